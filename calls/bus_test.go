package calls

import "testing"

// The bus sets full chunks aside whole: a burst past one chunk, taken when
// the dispatcher wakes late, comes out complete and in order, in chunks of
// busHigh that are never grown, and the emptied chunks are reused.
func TestBusChunksKeepOrder(t *testing.T) {
	var os observers
	b := &os.bus
	b.running, b.wake = true, make(chan struct{}, 1)
	const n = 3*busHigh + 7
	for i := range n {
		os.send(&record{typ: EventCallFinished, id: uint64(i + 1)})
	}
	var got []uint64
	var bts []*batch
	for bt := b.take(); bt != nil; bt = b.take() {
		if cap(bt.events) != busHigh {
			t.Fatalf("chunk of capacity %d, want %d", cap(bt.events), busHigh)
		}
		for i := range bt.events {
			got = append(got, bt.events[i].id)
		}
		bts = append(bts, bt)
	}
	if len(got) != n {
		t.Fatalf("took %d events, want %d", len(got), n)
	}
	for i, id := range got {
		if id != uint64(i+1) {
			t.Fatalf("event %d has id %d: out of order", i, id)
		}
	}
	if !b.parked {
		t.Fatal("an empty bus did not park the dispatcher")
	}
	for _, bt := range bts {
		bt.release()
	}
	if len(b.free) != len(bts) {
		t.Fatalf("%d chunks kept for reuse after %d were released", len(b.free), len(bts))
	}
	// The chunk the last take left in place fills first, then one free
	// chunk is taken, not a new one made.
	for i := range busHigh + 1 {
		os.send(&record{typ: EventCallFinished, id: uint64(i + 1)})
	}
	if len(b.free) != len(bts)-1 || len(b.ready) != 1 {
		t.Fatalf("after a chunk and one more event: %d free, %d ready; want %d free, 1 ready", len(b.free), len(b.ready), len(bts)-1)
	}
}
