// Package objects reads Kubernetes objects from a stream the way the API server hands them to a
// client: JSON whose integers are int64 (what unstructured.Unstructured and kstatus expect).
package objects

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Read returns every object in r: one JSON object per line (or concatenated), a JSON array of
// objects, or a list object (`kind: ...List` with `items`), in that order.
func Read(r io.Reader) ([]map[string]interface{}, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var out []map[string]interface{}
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading objects: %w", err)
		}
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			var items []interface{}
			if err := utiljson.Unmarshal(trimmed, &items); err != nil {
				return nil, err
			}
			for i, item := range items {
				obj, ok := item.(map[string]interface{})
				if !ok {
					return nil, fmt.Errorf("array element %d is not an object", i)
				}
				out = append(out, obj)
			}
			continue
		}
		var obj map[string]interface{}
		if err := utiljson.Unmarshal(trimmed, &obj); err != nil {
			return nil, err
		}
		if items, ok := obj["items"].([]interface{}); ok && obj["kind"] != nil && isList(obj["kind"]) {
			for i, item := range items {
				o, ok := item.(map[string]interface{})
				if !ok {
					return nil, fmt.Errorf("list item %d is not an object", i)
				}
				out = append(out, o)
			}
			continue
		}
		out = append(out, obj)
	}
}

func isList(kind interface{}) bool {
	s, ok := kind.(string)
	return ok && len(s) > 4 && s[len(s)-4:] == "List"
}

// Print writes v as one JSON line.
func Print(w io.Writer, v interface{}) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}
