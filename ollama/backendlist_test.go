package ollama

import (
	"slices"
	"testing"
)

func TestSplitBackends(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a=http://h:1/v1", []string{"a=http://h:1/v1"}},
		{"a=http://h:1/v1,b=http://g:2", []string{"a=http://h:1/v1", "b=http://g:2"}},
		{"a=http://h:1/v1,key-env=K,b=http://g:2,key-file=/k", []string{"a=http://h:1/v1,key-env=K", "b=http://g:2,key-file=/k"}},
		{" a=http://h:1/v1,key-env=K \n\tb=http://g:2 ,", []string{"a=http://h:1/v1,key-env=K", "b=http://g:2"}},
		// A part that is no backend stays with the one before, for
		// ParseBackend to name it.
		{"a=http://h:1/v1,token=x", []string{"a=http://h:1/v1,token=x"}},
		// Nothing before it: it is an entry of its own, refused there.
		{"key-env=K", []string{"key-env=K"}},
	} {
		if got := SplitBackends(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("SplitBackends(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, v := range SplitBackends(tt.in) {
			if _, err := ParseBackend(v); err != nil && tt.in != "key-env=K" && tt.in != "a=http://h:1/v1,token=x" {
				t.Errorf("%q: %v", v, err)
			}
		}
	}
}
