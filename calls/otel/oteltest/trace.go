package oteltest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Span is a span as Jaeger's query API shows it.
type Span struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
	// Service is the service.name of the process that sent the span.
	Service string `json:"-"`
}

// Tag returns the value of the span's tag k as text, or "".
func (s Span) Tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Parent returns the span ID of the span's parent, or "".
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Trace fetches the trace with the given ID from Jaeger's query API: an
// error unless Jaeger has exactly one trace of that ID.
func (j *Jaeger) Trace(id string) ([]Span, error) {
	resp, err := http.Get("http://" + j.Query + "/api/traces/" + id)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var body struct {
		Data []struct {
			Spans     []Span `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if len(body.Data) != 1 {
		return nil, fmt.Errorf("%d traces", len(body.Data))
	}
	spans := body.Data[0].Spans
	for i := range spans {
		spans[i].Service = body.Data[0].Processes[spans[i].ProcessID].ServiceName
	}
	return spans, nil
}
