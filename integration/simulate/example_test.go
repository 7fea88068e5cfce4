package simulate_test

import (
	"fmt"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/simulate"
)

func ExampleGenerate() {
	counts := map[domain.Type]int{}
	seen := map[string]bool{}
	err := simulate.Generate(simulate.Config{Seed: 1, Interactions: 2000}, func(e domain.Event) error {
		if seen[e.ID] { // a re-sent event: the same id delivered again
			return nil
		}
		seen[e.ID] = true
		counts[e.Type]++
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(counts), "event types,", counts[domain.InteractionStartedType], "interactions started")
	// Output: 14 event types, 2000 interactions started
}
