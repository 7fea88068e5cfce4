package simulate

import "time"

// ids mints deterministic UUIDs shaped like version 7 (RFC 9562): the first 48 bits
// are the Unix milliseconds of the event the id belongs to, so ids sort roughly by
// time as real v7 ids do; the "random" bits are derived from the seed and a counter.
// The low 62 bits are a bijection of (counter + key) on 62 bits, so no two ids of one
// run are equal, whatever their timestamps.
type ids struct {
	key, key2 uint64
	n         uint64
}

func newIDs(seed int64) ids {
	s := uint64(seed)
	return ids{key: splitmix(s ^ 0x5eed1d5), key2: splitmix(s + 0x1d5c0de)}
}

const mask62 = 1<<62 - 1

// perm62 is a bijection on [0, 2^62): additions, multiplications by odd constants and
// right xor-shifts, each invertible modulo 2^62.
func perm62(x uint64) uint64 {
	x &= mask62
	x = (x * 0x9e3779b97f4a7c15) & mask62
	x ^= x >> 29
	x = (x * 0xbf58476d1ce4e5b9) & mask62
	x ^= x >> 32
	return x
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

const hexdigits = "0123456789abcdef"

// next returns the canonical 36-character form of a fresh id for an event at t.
func (g *ids) next(t time.Time) string {
	var b [36]byte
	g.put(&b, t)
	return string(b[:])
}

// prefixed returns prefix followed by a fresh id, in one allocation.
func (g *ids) prefixed(prefix string, t time.Time) string {
	b := make([]byte, len(prefix)+36)
	copy(b, prefix)
	g.put((*[36]byte)(b[len(prefix):]), t)
	return string(b)
}

func (g *ids) put(b *[36]byte, t time.Time) {
	g.n++
	ms := uint64(t.UnixMilli()) & (1<<48 - 1)
	randA := splitmix(g.n^g.key2) & 0xfff
	hi := ms<<16 | 0x7000 | randA
	lo := 1<<63 | perm62(g.n+g.key) // variant 10
	j := 0
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		var v byte
		if i < 8 {
			v = byte(hi >> (56 - 8*i))
		} else {
			v = byte(lo >> (56 - 8*(i-8)))
		}
		b[j] = hexdigits[v>>4]
		b[j+1] = hexdigits[v&15]
		j += 2
	}
}
