package httpauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"time"
)

const (
	// nonceLifetime is how long a Digest nonce is good for. A client that
	// keeps a connection longer gets stale=true and carries on with a new one.
	nonceLifetime = 5 * time.Minute
	// maxReplayEntries bounds the nonces remembered for nc replay checks
	// (roughly 100 bytes each). Only nonces used with right credentials get
	// an entry, so only an authenticated client can fill the table.
	maxReplayEntries = 8192
	// replayWindow is how far behind the highest nc seen a late nc may be.
	replayWindow = 64

	nonceRaw = 8 + 8 + 16 // issue time, random, truncated HMAC-SHA256
)

// newNonce returns a nonce carrying its issue time and a MAC, so that no
// state is kept for nonces handed out to clients that never come back.
func (a *Authenticator) newNonce() string {
	var b [nonceRaw]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now().UnixNano()))
	rand.Read(b[8:16]) // unique per challenge, so two clients never share nc space
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:16])
	copy(b[16:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// openNonce returns the issue time of a nonce this Authenticator made.
func (a *Authenticator) openNonce(nonce string) (time.Time, bool) {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceRaw {
		return time.Time{}, false
	}
	var b [nonceRaw]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || n != nonceRaw {
		return time.Time{}, false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil)[:16], b[16:]) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// nonceUse is what is known of one nonce's use: the highest nc seen and a
// bitmap of the replayWindow ncs below and including it (bit i = max-i).
type nonceUse struct {
	issued int64 // UnixNano
	max    uint64
	seen   uint64
	noQop  bool // used once without qop (RFC 2069): spent
}

type useResult int

const (
	useOK        useResult = iota
	useReplay              // this nc, or a qop-less reuse, was seen before
	useForgotten           // state for this nonce was dropped to bound memory
)

// replayTable remembers used nonces. When it is full it forgets the oldest
// quarter and raises floor past them: a nonce issued before floor that has
// no entry may have been used already, so it is treated as stale rather
// than as new. Callers hold Authenticator.mu.
type replayTable struct {
	entries   map[string]*nonceUse
	floor     int64 // UnixNano; see above
	lastSweep time.Time
}

// use records nc (0 = no qop) for nonce if commit, and says whether it was
// acceptable.
func (t *replayTable) use(nonce string, issued int64, nc uint64, now time.Time, commit bool) useResult {
	e := t.entries[nonce]
	if e == nil {
		if issued < t.floor {
			return useForgotten
		}
		if !commit {
			return useOK
		}
		t.makeRoom(now)
		if issued < t.floor { // makeRoom may have forgotten nonces of this age
			return useForgotten
		}
		e = &nonceUse{issued: issued}
		t.entries[nonce] = e
	} else if e.noQop || nc == 0 {
		return useReplay
	}
	if nc == 0 {
		e.noQop = true // only reached for a new entry, so commit is set
		return useOK
	}
	if nc > e.max {
		if commit {
			if d := nc - e.max; d >= replayWindow {
				e.seen = 1
			} else {
				e.seen = e.seen<<d | 1
			}
			e.max = nc
		}
		return useOK
	}
	d := e.max - nc
	if d >= replayWindow || e.seen&(1<<d) != 0 {
		return useReplay
	}
	if commit {
		e.seen |= 1 << d
	}
	return useOK
}

// makeRoom drops expired entries now and then, and the oldest quarter
// when the table is still full.
func (t *replayTable) makeRoom(now time.Time) {
	if len(t.entries) < maxReplayEntries && now.Sub(t.lastSweep) < nonceLifetime {
		return
	}
	t.lastSweep = now
	expired := now.Add(-nonceLifetime).UnixNano()
	for k, e := range t.entries {
		if e.issued < expired {
			delete(t.entries, k)
		}
	}
	if len(t.entries) < maxReplayEntries {
		return
	}
	ages := make([]int64, 0, len(t.entries))
	for _, e := range t.entries {
		ages = append(ages, e.issued)
	}
	slices.Sort(ages)
	cut := ages[len(ages)/4] // "<= cut" below frees at least a quarter even if ages tie
	for k, e := range t.entries {
		if e.issued <= cut {
			delete(t.entries, k)
		}
	}
	t.floor = max(t.floor, cut+1)
}
