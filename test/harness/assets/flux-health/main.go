// flux-health prints, for each object read on stdin (JSON, one per line), the status Flux's
// kustomize-controller computes from the Kustomization's healthCheckExprs for its apiVersion and
// kind (cel.StatusEvaluator: status.observedGeneration first, then inProgress, failed, current),
// one JSON line per object: {"status": "InProgress" | "Failed" | "Current"}, or "Unknown" with the
// evaluation error as its message, which is how Flux's status reader reports an expression it
// cannot evaluate (and so keeps waiting, until the Kustomization's timeout).
//
// Usage: flux-health EXPRS.json < objects.json   (EXPRS: the healthCheckExprs list as JSON)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

type check struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	kustomize.HealthCheckExpressions
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: flux-health EXPRS.json < objects.json")
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err.Error())
	}
	var checks []check
	if err := json.Unmarshal(raw, &checks); err != nil {
		fail(err.Error())
	}
	evaluators := map[string]*cel.StatusEvaluator{}
	for _, c := range checks {
		e, err := cel.NewStatusEvaluator(&c.HealthCheckExpressions)
		if err != nil {
			fail(fmt.Sprintf("%s %s: %v", c.APIVersion, c.Kind, err))
		}
		evaluators[c.APIVersion+"/"+c.Kind] = e
	}
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var obj map[string]interface{}
		if err := utiljson.Unmarshal(line, &obj); err != nil {
			fail(err.Error())
		}
		u := &unstructured.Unstructured{Object: obj}
		r := result{}
		if e, ok := evaluators[u.GetAPIVersion()+"/"+u.GetKind()]; !ok {
			r.Error = "no healthCheckExprs for " + u.GetAPIVersion() + " " + u.GetKind()
		} else if res, err := e.Evaluate(context.Background(), u); err != nil {
			r.Status, r.Message = "Unknown", err.Error()
		} else {
			r.Status = res.Status.String()
		}
		if err := out.Encode(r); err != nil {
			fail(err.Error())
		}
	}
	if err := scanner.Err(); err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(2)
}
