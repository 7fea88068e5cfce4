package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

func ExampleDecoder_Decode() {
	d := domain.Decoder{Now: func() time.Time { return time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC) }}

	e, err := d.Decode([]byte(`{
		"specversion": "1.0",
		"id": "0193F1A2-7C4E-7B3A-9D2E-5F6A7B8C9D0E",
		"source": "genesys-cloud/org-3f1c",
		"type": "consent.captured",
		"time": "2026-03-08T07:59:59.123+01:00",
		"subject": "c0a8e1f2-2b1d-4e5f-8a9b-0c1d2e3f4a5b",
		"data": {"method": "ivr_verbal"}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.ID)
	fmt.Println(domain.FormatTime(e.Time))
	fmt.Println(e.Data.(*domain.ConsentCaptured).Method)
	canonical, _ := e.MarshalJSON()
	fmt.Println(string(canonical))

	_, err = d.Decode([]byte(`{
		"specversion": "1.0",
		"id": "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0f",
		"source": "genesys-cloud/org-3f1c",
		"type": "phi.accessed",
		"time": "2026-03-08T07:00:00",
		"subject": "c0a8e1f2-2b1d-4e5f-8a9b-0c1d2e3f4a5b",
		"data": {"agentId": "agent-007", "action": "forwarded", "recipientMasked": "jane.doe@example.org"}
	}`))
	fmt.Println(errors.Is(err, domain.ErrInvalid))
	for _, p := range domain.Problems(err) {
		fmt.Println(p.Field)
	}
	// Output:
	// 0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e
	// 2026-03-08T06:59:59.123Z
	// ivr_verbal
	// {"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e","source":"genesys-cloud/org-3f1c","type":"consent.captured","time":"2026-03-08T06:59:59.123Z","subject":"c0a8e1f2-2b1d-4e5f-8a9b-0c1d2e3f4a5b","data":{"method":"ivr_verbal"}}
	// true
	// time
	// data.recipientMasked
}

func ExampleCheckpointEvent() {
	note := "custody/CUSTODY_EVENTS\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n" +
		"— custody-checkpoint X6Id/mT9iDKFZcL7+q400VVlFo82qR/MmlcA5QEQO2+qR4l1IlQZpPq3zY0Xzjf8eBvJ/lJwCtGYdC00hg4+WznJPQk=\n"
	e, err := domain.CheckpointEvent(note, time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	c := e.Data.(*domain.CheckpointSigned)
	fmt.Println(e.Type, e.Subject, c.Origin, c.TreeSize, c.RootHash)
	fmt.Println(e.ID == domain.CheckpointEventID(c.Origin, c.TreeSize, c.RootHash))

	// The note's text and the event must agree.
	_, err = domain.CheckpointEvent(strings.Replace(note, "\n0\n", "\n00\n", 1), e.Time)
	for _, p := range domain.Problems(err) {
		fmt.Println(p.Field)
	}
	// Output:
	// checkpoint.signed 0 custody/CUSTODY_EVENTS 0 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
	// true
	// data.note
}
