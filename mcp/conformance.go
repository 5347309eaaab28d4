package mcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The official MCP conformance suite (npm @modelcontextprotocol/conformance)
// calls fixture tools and reads fixture resources that a real server does
// not have. AddConformanceFixtures serves them, straight on the SDK server
// and beside the router's calls, so that those scenarios run for real
// against membrane's transport, security layer and adapter. Only tests
// use it.

// Fixture payloads: a 1×1 PNG and a silent 8-sample WAV.
var (
	fixturePNG, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
	fixtureWAV, _ = base64.StdEncoding.DecodeString("UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA")
)

// jsonSchema202012 is the conformance suite's json_schema_2020_12_tool
// input schema: 2020-12 keywords a server must pass on untouched.
const jsonSchema202012 = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
  "properties": {
    "name": {"type": "string"},
    "address": {"$ref": "#/$defs/address"},
    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
    "phone": {"type": "string"},
    "email": {"type": "string"}
  },
  "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
  "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
  "then": {"required": ["phone"]},
  "else": {"required": ["email"]},
  "additionalProperties": false
}`

// AddConformanceFixtures adds the conformance suite's fixture tools
// (test_simple_text, test_image_content, test_audio_content,
// test_embedded_resource, test_multiple_content_types,
// test_tool_with_logging, test_tool_with_progress, test_error_handling,
// json_schema_2020_12_tool) and resources (test://static-text,
// test://static-binary, the template test://template/{id}/data). For
// tests only: they are not calls, and no policy applies to them.
func (s *Server) AddConformanceFixtures() {
	var names []string
	s.lists.invalidate()
	defer func() { s.lists.changed(names, nil) }()
	text := func(t string) []sdk.Content { return []sdk.Content{&sdk.TextContent{Text: t}} }
	tool := func(name, desc string, h func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult) {
		names = append(names, name)
		s.sdk.AddTool(&sdk.Tool{Name: name, Description: desc, InputSchema: json.RawMessage(`{"type":"object","properties":{}}`)},
			func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return h(ctx, req), nil
			})
	}
	tool("test_simple_text", "Conformance fixture: returns simple text.", func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: text("This is a simple text response for testing.")}
	})
	tool("test_image_content", "Conformance fixture: returns an image.", func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.ImageContent{Data: fixturePNG, MIMEType: "image/png"}}}
	})
	tool("test_audio_content", "Conformance fixture: returns audio.", func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.AudioContent{Data: fixtureWAV, MIMEType: "audio/wav"}}}
	})
	tool("test_embedded_resource", "Conformance fixture: returns an embedded resource.", func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{
			URI: "test://embedded-resource", MIMEType: "text/plain", Text: "This is an embedded resource content."}}}}
	})
	tool("test_multiple_content_types", "Conformance fixture: returns text, an image and a resource.", func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{
			&sdk.TextContent{Text: "Multiple content types test:"},
			&sdk.ImageContent{Data: fixturePNG, MIMEType: "image/png"},
			&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "test://mixed-content-resource", MIMEType: "application/json", Text: `{"test":"data","value":123}`}},
		}}
	})
	tool("test_tool_with_logging", "Conformance fixture: logs three messages.", func(ctx context.Context, req *sdk.CallToolRequest) *sdk.CallToolResult {
		for i, m := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
			if i > 0 {
				sleep(ctx, 50*time.Millisecond)
			}
			//lint:ignore SA1019 the fixture exists to test logging, served to clients before 2026-07-28.
			_ = req.Session.Log(ctx, &sdk.LoggingMessageParams{Level: "info", Logger: "conformance", Data: m})
		}
		return &sdk.CallToolResult{Content: text("Logging completed")}
	})
	tool("test_tool_with_progress", "Conformance fixture: reports progress 0, 50, 100 of 100.", func(ctx context.Context, req *sdk.CallToolRequest) *sdk.CallToolResult {
		tok := req.Params.GetProgressToken()
		for i, p := range []float64{0, 50, 100} {
			if i > 0 {
				sleep(ctx, 50*time.Millisecond)
			}
			if tok != nil {
				_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: p, Total: 100})
			}
		}
		return &sdk.CallToolResult{Content: text("Progress completed")}
	})
	tool("test_error_handling", "Conformance fixture: always fails as a tool error.", func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{IsError: true, Content: text("This tool intentionally returns an error for testing")}
	})
	names = append(names, "json_schema_2020_12_tool")
	s.sdk.AddTool(&sdk.Tool{Name: "json_schema_2020_12_tool", Description: "Conformance fixture: a JSON Schema 2020-12 input schema.", InputSchema: json.RawMessage(jsonSchema202012)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: text("ok")}, nil
		})

	s.sdk.AddResource(&sdk.Resource{URI: "test://static-text", Name: "static-text", MIMEType: "text/plain"},
		func(context.Context, *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: "test://static-text", MIMEType: "text/plain", Text: "This is the content of the static text resource."}}}, nil
		})
	s.sdk.AddResource(&sdk.Resource{URI: "test://static-binary", Name: "static-binary", MIMEType: "image/png"},
		func(context.Context, *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: "test://static-binary", MIMEType: "image/png", Blob: fixturePNG}}}, nil
		})
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{URITemplate: "test://template/{id}/data", Name: "template", MIMEType: "application/json"},
		func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			uri := req.Params.URI
			id := strings.TrimSuffix(strings.TrimPrefix(uri, "test://template/"), "/data")
			body, _ := json.Marshal(map[string]any{"id": id, "templateTest": true, "data": fmt.Sprintf("Data for ID: %s", id)})
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(body)}}}, nil
		})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
