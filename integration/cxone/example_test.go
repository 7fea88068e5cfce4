package cxone_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/custody/custody/integration/cxone"
)

// The defaults of the mapping, as a mapping file would spell them.
func ExampleDefaultMapping() {
	b, _ := json.MarshalIndent(cxone.DefaultMapping(), "", "  ")
	fmt.Println(string(b))
	// Output:
	// {
	//   "customData": {
	//     "prefix": "hipaa_",
	//     "consent": "hipaa_consent_captured",
	//     "consentTime": "hipaa_consent_ts",
	//     "consentMethod": "hipaa_consent_method",
	//     "classification": "hipaa_phi_class",
	//     "interactionType": "hipaa_interaction_type",
	//     "part2": "hipaa_part2",
	//     "authorized": "hipaa_agent_authorized",
	//     "emailTls": "hipaa_email_tls"
	//   },
	//   "defaultConsentMethod": "ivr_verbal",
	//   "defaultInteractionType": "other",
	//   "channels": {
	//     "Call": "voice",
	//     "Chat": "chat",
	//     "Email": "email",
	//     "SMS": "message"
	//   },
	//   "agentPrefix": "cx-agent-"
	// }
}

// An export of one completed contact (a page as the API answers it) and its custom
// data (the custom-data answer with the contact id added) becomes contract events.
func ExampleReadFile() {
	export := `{"businessUnitId": 4600000, "totalRecords": 1, "completedContacts": [{"contactId": 123456789012, "masterContactId": 123456789012, "contactStartDate": "2026-05-01T11:50:49.000Z", "mediaTypeName": "Call", "isOutbound": false, "fromAddress": "5555550100", "toAddress": "8005550000", "skillId": 1234, "agentId": 99999, "preQueueSeconds": 80.0, "inQueueSeconds": 13.0, "totalDurationSeconds": 370.0, "abandoned": false, "primaryDispositionId": 0}]}
{"contactId": 123456789012, "contactCustomData": [{"name": "hipaa_consent_captured", "value": "true"}, {"name": "hipaa_phi_class", "value": "protected_health_information"}, {"name": "hipaa_interaction_type", "value": "claims_inquiry"}, {"name": "hipaa_agent_authorized", "value": "true"}, {"name": "member_id", "value": "never read"}]}
`
	evs, err := cxone.ReadFile(strings.NewReader(export), cxone.FileOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, e := range evs {
		b, _ := e.MarshalJSON()
		fmt.Println(string(b))
	}
	// Output:
	// {"specversion":"1.0","id":"5d16d61e-8db6-8197-90fb-a81eda74b7bb","source":"nice-cxone/bu-4600000","type":"interaction.started","time":"2026-05-01T11:50:49Z","subject":"cx-123456789012","datacontenttype":"application/json","data":{"channel":"voice","direction":"inbound","queueId":"cx-skill-1234"}}
	// {"specversion":"1.0","id":"db1a8cc5-19c1-8f8b-b713-98cba2e8c1a3","source":"nice-cxone/bu-4600000","type":"interaction.classified","time":"2026-05-01T11:52:09Z","subject":"cx-123456789012","datacontenttype":"application/json","data":{"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}}
	// {"specversion":"1.0","id":"83f2b6cb-b2b1-8cce-8a4d-f3bbe483b272","source":"nice-cxone/bu-4600000","type":"consent.captured","time":"2026-05-01T11:52:09Z","subject":"cx-123456789012","datacontenttype":"application/json","data":{"method":"ivr_verbal"}}
	// {"specversion":"1.0","id":"c028fe23-c0ca-84bc-9bb4-5fca38a7dc08","source":"nice-cxone/bu-4600000","type":"agent.assigned","time":"2026-05-01T11:52:22Z","subject":"cx-123456789012","datacontenttype":"application/json","data":{"agentId":"cx-agent-99999","authorized":true,"queueId":"cx-skill-1234"}}
	// {"specversion":"1.0","id":"35cde98d-2653-8e5e-bf19-81d7f739c0f5","source":"nice-cxone/bu-4600000","type":"interaction.ended","time":"2026-05-01T11:56:59Z","subject":"cx-123456789012","datacontenttype":"application/json","data":{}}
}
