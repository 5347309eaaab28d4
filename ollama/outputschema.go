package ollama

import "encoding/json"

// The output schemas of the model tools: what their structured content
// holds. A large field (a long answer, the vectors) travels once: the
// answer in the text, the vectors in the structured content.

// chatOutputSchema is the structured content of every chat tool (a
// model's own, a logical tool, ollama_chat): the answer with its token
// counts and timings, or, for a failed call, what went wrong.
var chatOutputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "model": {"type": "string", "description": "The Ollama model that answered."},
    "host": {"type": "string", "description": "The Ollama host that ran it."},
    "answer": {"type": "string", "description": "The answer, when it is small; otherwise only the text content carries it (answer_in_text)."},
    "answer_in_text": {"type": "boolean", "description": "True when the answer is left out here because it is large."},
    "thinking": {"type": "string", "description": "The model's reasoning, apart from the answer, when it reasoned and the reasoning is small."},
    "thinking_in_text": {"type": "boolean", "description": "True when the reasoning is left out here because it is large; the text's \"Reasoning:\" block carries it."},
    "done_reason": {"type": "string", "description": "Why generation stopped: stop, length, or response_limit."},
    "prompt_eval_count": {"type": "integer", "minimum": 0, "description": "Tokens of input."},
    "eval_count": {"type": "integer", "minimum": 0, "description": "Tokens generated."},
    "total_duration_ms": {"type": "integer", "minimum": 0},
    "load_duration_ms": {"type": "integer", "minimum": 0, "description": "Time spent loading the model."},
    "prompt_eval_duration_ms": {"type": "integer", "minimum": 0},
    "eval_duration_ms": {"type": "integer", "minimum": 0},
    "truncated": {"type": "boolean", "description": "The answer passed the response limit and was cut."},
    "context_full": {"type": "boolean", "description": "The input probably filled the context window."},
    "error": {"type": "string", "description": "Set when the call failed: what happened."},
    "tokens": {"type": "integer", "minimum": 0, "description": "With error: tokens that came back before the failure."}
  },
  "required": ["model", "host"],
  "anyOf": [
    {"required": ["done_reason"]},
    {"required": ["error"]}
  ]
}`)

// embedOutputSchema is the structured content of every embed tool.
var embedOutputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "model": {"type": "string"},
    "host": {"type": "string"},
    "dimensions": {"type": "integer", "minimum": 0},
    "count": {"type": "integer", "minimum": 0, "description": "How many vectors: one per input."},
    "embeddings": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "description": "The vectors, one per input, in order (left out with summary)."},
    "summaries": {"type": "array", "items": {
      "type": "object",
      "properties": {
        "dimensions": {"type": "integer"},
        "norm": {"type": "number"},
        "first": {"type": "array", "items": {"type": "number"}}
      },
      "required": ["dimensions", "norm", "first"]
    }}
  },
  "required": ["model", "host", "dimensions", "count"]
}`)

// modelsOutputSchema is the structured content of ollama_models.
var modelsOutputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "models": {"type": "array", "items": {
      "type": "object",
      "properties": {
        "name": {"type": "string"},
        "tools": {"type": ["array", "null"], "items": {"type": "string"}, "description": "The tools that run this model."},
        "capabilities": {"type": ["array", "null"], "items": {"type": "string"}},
        "family": {"type": "string"},
        "parameter_size": {"type": "string"},
        "quantization": {"type": "string"},
        "context_length": {"type": "integer"},
        "embedding_dimensions": {"type": "integer"},
        "hosts": {"type": ["array", "null"], "items": {"type": "string"}},
        "available": {"type": "boolean", "description": "False while every host that has the model is down."}
      },
      "required": ["name", "capabilities", "hosts", "available"]
    }},
    "hosts": {"type": "array", "items": {
      "type": "object",
      "properties": {
        "url": {"type": "string"},
        "up": {"type": "boolean"},
        "models": {"type": "integer"},
        "err": {"type": "string"}
      },
      "required": ["url", "up", "models"]
    }}
  },
  "required": ["models", "hosts"]
}`)
