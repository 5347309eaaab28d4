package ollama

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/membrane-mcp/membrane/calls"
)

// schemaFlags says which optional chat fields a tool's schema offers.
type schemaFlags struct {
	generic bool // a "model" argument (ollama_chat, ollama_embed)
	vision  bool // images
	think   bool // think
	levels  bool // think also takes "low", "medium", "high"
	system  bool // a caller's system prompt
	numCtx  int  // the context length bounding num_ctx; 0 unknown
	backend bool // an OpenAI-compatible server's model: no truncate
}

func imagesSchema() map[string]any {
	return map[string]any{
		"type": "array",
		"description": "Images for the model to look at. Each is base64 data (optionally a data: URI) " +
			"or the path of a regular file in the workspace (the sandbox's working directory; the one \"workspace\" names, else this session's), such as \"plot.png\" or \"/workspace/plot.png\".",
		"items":    map[string]any{"type": "string"},
		"maxItems": maxImages,
	}
}

// optionsSchema lists the options a chat tool takes. It stays terse (a
// client may list hundreds of these tools, and a model reads every byte):
// types only, with words and bounds where they are not obvious. checkOptions
// enforces the full bounds with errors that say what was wrong.
func optionsSchema(numCtx int) map[string]any {
	props := map[string]any{}
	for k, o := range chatOptions {
		p := map[string]any{}
		switch o.kind {
		case optNumber:
			p["type"] = "number"
		case optInteger:
			p["type"] = "integer"
		case optStrings:
			p["type"] = "array"
			p["items"] = map[string]any{"type": "string"}
		}
		props[k] = p
	}
	props["num_predict"].(map[string]any)["description"] = "most tokens to generate; -1 no limit"
	nc := props["num_ctx"].(map[string]any)
	nc["description"] = "context window in tokens"
	nc["minimum"] = 1
	if numCtx > 0 {
		nc["maximum"] = numCtx
	}
	return map[string]any{
		"type":                 "object",
		"description":          "Ollama model options.",
		"properties":           props,
		"additionalProperties": false,
	}
}

// schemas caches built schemas: they depend only on a few flags, and a
// refresh with hundreds of models would otherwise rebuild the same bytes
// for each. Callers must not modify the returned bytes.
var schemas sync.Map // schemaFlags or embedKey -> json.RawMessage

type embedKey struct {
	generic, backend bool
	dims             int
}

// chatSchema is the JSON Schema of a chat tool's arguments.
func chatSchema(f schemaFlags) json.RawMessage {
	if s, ok := schemas.Load(f); ok {
		return s.(json.RawMessage)
	}
	s := buildChatSchema(f)
	schemas.Store(f, s)
	return s
}

func buildChatSchema(f schemaFlags) json.RawMessage {
	msgProps := map[string]any{
		"role":    map[string]any{"type": "string", "enum": roles},
		"content": map[string]any{"type": "string"},
	}
	if f.vision {
		msgProps["images"] = imagesSchema()
	}
	props := map[string]any{
		"prompt": map[string]any{
			"type":        "string",
			"description": "The user's message. Give this, messages, or both (the prompt then comes last).",
		},
		"messages": map[string]any{
			"type":        "array",
			"description": "A conversation so far, oldest first.",
			"items": map[string]any{
				"type":                 "object",
				"properties":           msgProps,
				"required":             []string{"role", "content"},
				"additionalProperties": false,
			},
		},
		"format": map[string]any{
			"description": "Structured output: \"json\" for any JSON, or a JSON Schema object the answer must match.",
			"anyOf": []any{
				map[string]any{"type": "string", "enum": []string{"json"}},
				map[string]any{"type": "object"},
			},
		},
		"options": optionsSchema(f.numCtx),
		"truncate": map[string]any{
			"type":        "boolean",
			"description": "If the input overflows the context window: false (default) fails saying so; true drops the oldest messages.",
		},
	}
	if f.backend {
		delete(props, "truncate") // OpenAI-compatible servers refuse an overlong input; they cannot cut it
	}
	if f.system {
		props["system"] = map[string]any{"type": "string", "description": "A system prompt that sets the model's role and rules."}
	}
	if f.vision {
		props["images"] = imagesSchema()
		props[calls.WorkspaceArg] = json.RawMessage(calls.WorkspaceArgSchema)
	}
	switch {
	case f.think && f.levels:
		props["think"] = map[string]any{
			"description": "How hard the model reasons before answering: \"low\", \"medium\", \"high\", true or false. The reasoning comes back apart from the answer.",
			"anyOf": []any{
				map[string]any{"type": "boolean"},
				map[string]any{"type": "string", "enum": []string{"low", "medium", "high"}},
			},
		}
	case f.think:
		props["think"] = map[string]any{
			"type":        "boolean",
			"description": "Whether the model reasons before answering (unset: Ollama's default, which is to reason). The reasoning comes back apart from the answer.",
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if f.generic {
		props["model"] = map[string]any{"type": "string", "description": "The model to run, exactly as ollama_models lists it (e.g. \"qwen3:0.6b\")."}
		props["images"] = imagesSchema()
		props[calls.WorkspaceArg] = json.RawMessage(calls.WorkspaceArgSchema)
		props["think"] = map[string]any{
			"description": "For thinking models: true or false; \"low\", \"medium\" or \"high\" for those that take levels (gpt-oss).",
			"anyOf": []any{
				map[string]any{"type": "boolean"},
				map[string]any{"type": "string", "enum": []string{"low", "medium", "high"}},
			},
		}
		s["required"] = []string{"model"}
	}
	return mustJSON(s)
}

// embedSchema is the JSON Schema of an embed tool's arguments.
// A backend model's (an OpenAI-compatible server's) has no truncate.
func embedSchema(generic, backend bool, dims int) json.RawMessage {
	k := embedKey{generic, backend, dims}
	if s, ok := schemas.Load(k); ok {
		return s.(json.RawMessage)
	}
	s := buildEmbedSchema(generic, backend, dims)
	schemas.Store(k, s)
	return s
}

func buildEmbedSchema(generic, backend bool, dims int) json.RawMessage {
	what := "The text to embed, or an array of texts (one vector each)."
	if dims > 0 {
		what = fmt.Sprintf("The text to embed, or an array of texts; each gets one vector of %d numbers.", dims)
	}
	props := map[string]any{
		"input": map[string]any{
			"description": what,
			"anyOf": []any{
				map[string]any{"type": "string", "minLength": 1},
				map[string]any{"type": "array", "items": map[string]any{"type": "string", "minLength": 1}, "minItems": 1, "maxItems": maxEmbedInputs},
			},
		},
		"summary": map[string]any{
			"type":        "boolean",
			"description": "Return a compact summary of each vector (dimensions, norm, first values) instead of the full vectors.",
		},
		"truncate": map[string]any{
			"type":        "boolean",
			"description": "Cut inputs longer than the model's context instead of failing (Ollama's default is true).",
		},
	}
	if backend {
		delete(props, "truncate")
	}
	required := []string{"input"}
	if generic {
		props["model"] = map[string]any{"type": "string", "description": "The embedding model to run, exactly as ollama_models lists it."}
		required = append(required, "model")
	}
	return mustJSON(map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only static maps reach here
	}
	return b
}

// withModelEnum returns schema with an enum of names on its "model"
// property, in sorted order so that the same models give the same bytes.
// No names leaves the schema as it is: an empty enum would accept nothing.
func withModelEnum(schema json.RawMessage, names []string) json.RawMessage {
	if len(names) == 0 {
		return schema
	}
	var s map[string]any
	if json.Unmarshal(schema, &s) != nil {
		return schema
	}
	props, _ := s["properties"].(map[string]any)
	model, _ := props["model"].(map[string]any)
	if model == nil {
		return schema
	}
	enum := slices.Clone(names)
	slices.Sort(enum)
	model["enum"] = slices.Compact(enum)
	return mustJSON(s)
}
