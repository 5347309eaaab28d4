package ollama

import "strings"

// OpenAIBaseURL is the OpenAI-compatible endpoint (/v1) of an Ollama host
// given as in Config.Hosts ("" reads OLLAMA_HOST, as ParseHost does), for
// programs that drive Ollama through an OpenAI client.
func OpenAIBaseURL(host string) (string, error) {
	u, err := ParseHost(host)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(u.String(), "/") + "/v1", nil
}
