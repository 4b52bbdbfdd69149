package spool

import (
	crand "crypto/rand"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idGen makes ULID-based ids that are monotonic within the process, so that
// ordering by id is ordering by creation.
type idGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

func newIDGen() *idGen {
	var seed [32]byte
	crand.Read(seed[:])
	return &idGen{entropy: ulid.Monotonic(rand.NewChaCha8(seed), 0)}
}

// next returns prefix + a new ULID for time t.
func (g *idGen) next(prefix string, t time.Time) string {
	g.mu.Lock()
	id, err := ulid.New(ulid.Timestamp(t), g.entropy)
	g.mu.Unlock()
	if err != nil {
		// The entropy overflowed within one millisecond (2^80 ids): take
		// fresh randomness rather than fail.
		id = ulid.MustNew(ulid.Timestamp(t), crand.Reader)
	}
	return prefix + id.String()
}

// idBefore returns an id that sorts after every id of prefix made before
// time t and before every id made at t or later.
func idBefore(prefix string, t time.Time) string {
	var id ulid.ULID
	id.SetTime(ulid.Timestamp(t))
	return prefix + id.String()
}

// eventID encodes an event's commit sequence number in a ULID, so that the
// id is both sortable and the cursor itself.
func eventID(seq int64, t time.Time) string {
	var id ulid.ULID
	id.SetTime(ulid.Timestamp(t))
	var e [10]byte
	binary.BigEndian.PutUint64(e[2:], uint64(seq))
	id.SetEntropy(e[:])
	return "evt_" + id.String()
}

// eventSeq returns the sequence number an event id encodes.
func eventSeq(id string) (int64, error) {
	if id == "" {
		return 0, nil
	}
	if len(id) != 30 || id[:4] != "evt_" {
		return 0, invalid("after", "%q is not an event id", id)
	}
	u, err := ulid.ParseStrict(id[4:])
	if err != nil {
		return 0, invalid("after", "%q is not an event id: %v", id, err)
	}
	e := u.Entropy()
	// No event has a sequence number past MaxInt64: such a cursor is
	// beyond every event. As a negative seq, it listed them all.
	return int64(min(binary.BigEndian.Uint64(e[2:]), math.MaxInt64)), nil
}
