package bridge

import "sync"

// recentLog keeps the last records for the status page: the newest of all
// extensions for the overview, and the newest of each extension for its own
// page (at 10,000 phones the overall few would hold nothing of most
// extensions).
type recentLog[T any] struct {
	all  *ring[T]
	key  func(T) string
	perN int

	mu  sync.Mutex
	per map[string]*ring[T]
}

// Records kept overall and per extension. Per extension each log costs
// about a kilobyte for each extension that ever had a record: with the CSTA
// and the action URL log, some 20 MB at 10,000 busy phones. Extensions a
// reload removed keep theirs until the bridge restarts.
const (
	recentAll = 50
	recentPer = 10
)

func newRecentLog[T any](key func(T) string) *recentLog[T] {
	return &recentLog[T]{all: newRing[T](recentAll), key: key, perN: recentPer, per: map[string]*ring[T]{}}
}

func newCSTALog() *recentLog[cstaRecord] {
	return newRecentLog(func(r cstaRecord) string { return r.Ext })
}

func newActionLog() *recentLog[actionRecord] {
	return newRecentLog(func(r actionRecord) string { return r.Ext })
}

func (l *recentLog[T]) add(v T) {
	l.all.add(v)
	k := l.key(v)
	l.mu.Lock()
	r := l.per[k]
	if r == nil {
		r = newRing[T](l.perN)
		l.per[k] = r
	}
	l.mu.Unlock()
	r.add(v)
}

// list returns the newest records of all extensions, oldest first.
func (l *recentLog[T]) list() []T { return l.all.list() }

// listFor returns the newest records of one extension, oldest first.
func (l *recentLog[T]) listFor(k string) []T {
	l.mu.Lock()
	r := l.per[k]
	l.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.list()
}
