package cmdqueue

// recentSet remembers the last n command ids dispatched (stored on
// CMD_DISPATCH), oldest forgotten first. It catches redeliveries whose
// earlier delivery was dispatched but not acked (a lost ack, an AckWait
// that expired during the publish) in this process, for longer than the
// stream's duplicate window. Not safe for concurrent use: the Worker
// guards it with its mutex.
type recentSet struct {
	ring []string
	next int
	ids  map[string]struct{}
}

func newRecentSet(n int) *recentSet {
	return &recentSet{ring: make([]string, n), ids: make(map[string]struct{}, n)}
}

func (r *recentSet) has(id string) bool {
	_, ok := r.ids[id]
	return ok
}

func (r *recentSet) add(id string) {
	if r.has(id) {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

func (r *recentSet) len() int { return len(r.ids) }
