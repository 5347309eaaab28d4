package observers_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/observers"
)

// TestOpen: the set holds what the options ask for; a ledger that cannot
// open is a typed error naming it, while a store that cannot open leaves
// the set without one and says why.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		if k == "XDG_STATE_HOME" {
			return dir
		}
		return ""
	}
	s, err := observers.Open(&observers.Options{AuditLog: filepath.Join(dir, "audit.jsonl"), Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	// Without OTEL_* tracing is off: no tracer observer.
	if s.Ledger == nil || s.Store == nil || s.StoreErr != nil || s.Tracer != nil || len(s.RouterObservers()) != 2 {
		t.Fatalf("ledger %v, store %v (%v), tracer %v, %d observers: want a ledger and the store", s.Ledger != nil, s.Store != nil, s.StoreErr, s.Tracer, len(s.RouterObservers()))
	}
	r := calls.NewRouter(&calls.RouterOptions{Observers: s.RouterObservers()})
	if s.AttachMetrics(r, nil) == nil || len(r.ObserverStats()) != 3 {
		t.Errorf("metrics not attached: %+v", r.ObserverStats())
	}
	s.Close(r, nil)
	if _, err := os.Stat(filepath.Join(dir, "membrane", "membrane.db")); err != nil {
		t.Errorf("the store is not at its default path: %v", err)
	}

	_, err = observers.Open(&observers.Options{AuditLog: filepath.Join(dir, "no", "such", "dir", "audit.jsonl"), Store: observers.StoreOff})
	var pe *observers.PartError
	if !errors.As(err, &pe) || pe.Part != "ledger" {
		t.Errorf("a ledger in a missing directory gave %v, want a PartError for the ledger", err)
	}

	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	s, err = observers.Open(&observers.Options{Store: filepath.Join(blocker, "membrane.db")})
	if err != nil {
		t.Fatalf("a store that cannot open failed the set: %v", err)
	}
	if s.Store != nil || s.StoreErr == nil {
		t.Errorf("store %v, StoreErr %v: want none, and why", s.Store, s.StoreErr)
	}
	s.Close(nil, nil)

	s, err = observers.Open(&observers.Options{Store: observers.StoreOff})
	if err != nil || s.Store != nil || s.Ledger != nil || len(s.RouterObservers()) != 0 {
		t.Errorf("off: %v, %d observers, want none", err, len(s.RouterObservers()))
	}
	s.Close(nil, nil)
}
