package genesys_test

import (
	"fmt"
	"time"

	"github.com/custody/custody/integration/genesys"
)

func ExampleMapper_Notification() {
	m, err := genesys.NewMapper(genesys.MapperConfig{
		Source: "genesys-cloud/org-3f1c",
		// The receiving clock, for the contract's "at most 24 h ahead" rule.
		Now: func() time.Time { return time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC) },
		Mapping: genesys.Mapping{Authorization: genesys.Authorization{
			QueueRoles: map[string][]string{"claims-queue": {"claims-phi"}},
			UserRoles:  map[string][]string{"agent-7a2c": {"claims-phi"}},
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	evs, err := m.Notification([]byte(`{
		"topicName": "v2.detail.events.conversation.c0a8e1f2.user.start",
		"version": "2",
		"eventBody": {"eventTime": 1777636250000, "conversationId": "c0a8e1f2", "participantId": "p-1",
		              "userId": "agent-7a2c", "queueId": "claims-queue", "mediaType": "VOICE", "direction": "INBOUND",
		              "ani": "tel:+15558675309"}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range evs {
		b, _ := e.MarshalJSON()
		fmt.Println(string(b))
	}

	_, err = m.Notification([]byte(`{"topicName": "v2.detail.events.conversation.c0a8e1f2.user.start",
		"eventBody": {"conversationId": "c0a8e1f2", "userId": "agent-7a2c", "memberDob": "01/02/1960"}}`))
	fmt.Println(err)
	// Output:
	// {"specversion":"1.0","id":"f9e966a7-91be-8edf-863c-dc4037e50100","source":"genesys-cloud/org-3f1c","type":"agent.assigned","time":"2026-05-01T11:50:50Z","subject":"c0a8e1f2","data":{"agentId":"agent-7a2c","authorized":true,"queueId":"claims-queue"}}
	// notification user.start of conversation c0a8e1f2: eventBody.memberDob: is not a field of the Genesys detail event user.start model that this adapter knows; if Genesys added it, review it and set allowUnknownFields to ignore such fields; eventBody.eventTime: required
}
