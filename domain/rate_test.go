package domain_test

import (
	"github.com/custody/custody/domain"
	"testing"
)

func TestRate(t *testing.T) {
	for _, c := range []struct {
		n, d int64
		want string
	}{{0, 0, "1.0000"}, {1, 3, "0.3333"}, {2, 3, "0.6667"}, {1, 1, "1.0000"}, {0, 5, "0.0000"}, {1, 8, "0.1250"}, {5, 160000, "0.0000"}, {15, 480000, "0.0000"}, {1, 20000, "0.0000"}, {3, 20000, "0.0002"}, {1, 160000, "0.0000"}, {50001, 100000000, "0.0005"}, {5, 100000, "0.0000"}, {15, 100000, "0.0002"}, {25, 100000, "0.0002"}, {35, 100000, "0.0004"}} {
		if got := domain.Rate(c.n, c.d); got != c.want {
			t.Errorf("Rate(%d,%d)=%s want %s", c.n, c.d, got, c.want)
		}
	}
}
