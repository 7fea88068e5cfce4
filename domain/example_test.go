package domain_test

import (
	"errors"
	"fmt"
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
