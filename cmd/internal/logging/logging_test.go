package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestJSONDurationsInMS(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, Options{JSON: true}).Info("done", "dur", 53200*time.Microsecond, "n", 3)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", buf.String(), err)
	}
	if rec["dur_ms"] != 53.2 || rec["n"] != float64(3) {
		t.Errorf("record = %v, want dur_ms 53.2 and n 3", rec)
	}
	if _, ok := rec["dur"]; ok {
		t.Errorf("the duration kept its own key: %v", rec)
	}
}

func TestTextLevelAndColor(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, Options{Level: slog.LevelWarn, Color: true})
	log.Info("hidden")
	log.Warn("shown", "dur", time.Second)
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") || !strings.Contains(out, "dur=1s") {
		t.Errorf("text log = %q, want only the warning, with dur=1s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("coloured a log that is not a terminal: %q", out)
	}
}
