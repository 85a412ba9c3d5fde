package fairshare

import "container/list"

// rotation holds values in one FIFO per key and hands them out round-robin by key: pop takes the oldest
// value of the key whose turn it is, then that key waits until every other key holding values had a turn.
// A key that gets its first value joins the rotation last, except that it goes before the key served
// most recently: that one has just had its turn. So a newcomer is served after at most one value of each
// key already waiting, and never after the one just served. The zero value is empty and ready to use; it
// is not safe for concurrent use.
type rotation[K comparable, V any] struct {
	fifos map[K]*fifo[K, V]
	turns list.List // of *fifo[K, V]: the keys holding values, the one to serve next first
	// last is the key served most recently (hasLast: any was).
	last    K
	hasLast bool
	n       int
}

type fifo[K comparable, V any] struct {
	key    K
	values list.List // of V, oldest first
	turn   *list.Element
}

// slot is where push put a value, to remove it again.
type slot[K comparable, V any] struct {
	fifo *fifo[K, V]
	elem *list.Element
}

func (r *rotation[K, V]) len() int { return r.n }

// push appends v to key's FIFO.
func (r *rotation[K, V]) push(key K, v V) slot[K, V] {
	if r.fifos == nil {
		r.fifos = map[K]*fifo[K, V]{}
	}
	f := r.fifos[key]
	if f == nil {
		f = &fifo[K, V]{key: key}
		r.fifos[key] = f
		back := r.turns.Back()
		if r.hasLast && key != r.last && back != nil && back.Value.(*fifo[K, V]).key == r.last {
			f.turn = r.turns.InsertBefore(f, back)
		} else {
			f.turn = r.turns.PushBack(f)
		}
	}
	r.n++
	return slot[K, V]{fifo: f, elem: f.values.PushBack(v)}
}

// pop removes and returns the oldest value of the key whose turn it is; ok is false when r is empty.
func (r *rotation[K, V]) pop() (key K, v V, ok bool) {
	front := r.turns.Front()
	if front == nil {
		return key, v, false
	}
	f := front.Value.(*fifo[K, V])
	v = f.values.Remove(f.values.Front()).(V)
	r.n--
	r.last, r.hasLast = f.key, true
	if f.values.Len() == 0 {
		r.drop(f)
	} else {
		r.turns.MoveToBack(f.turn)
	}
	return f.key, v, true
}

// served records that key was served outside pop (what holds the turn came by without waiting).
func (r *rotation[K, V]) served(key K) {
	r.last, r.hasLast = key, true
	if f := r.fifos[key]; f != nil {
		r.turns.MoveToBack(f.turn)
	}
}

// remove takes out the value push put at s; it must still be there.
func (r *rotation[K, V]) remove(s slot[K, V]) {
	s.fifo.values.Remove(s.elem)
	r.n--
	if s.fifo.values.Len() == 0 {
		r.drop(s.fifo)
	}
}

// drop forgets an empty FIFO, so keys that come and go leave nothing behind.
func (r *rotation[K, V]) drop(f *fifo[K, V]) {
	r.turns.Remove(f.turn)
	delete(r.fifos, f.key)
}
