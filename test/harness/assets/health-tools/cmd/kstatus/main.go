// kstatus prints, for each object read on stdin, what sigs.k8s.io/cli-utils' kstatus computes
// for it (status.Compute): the status (InProgress, Failed, Current, Terminating, NotFound,
// Unknown), its message and the conditions kstatus derived, one JSON line per object, in order.
package main

import (
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"tde.dev/testbin/health-tools/internal/objects"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type result struct {
	Status     string      `json:"status,omitempty"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions"`
	Error      string      `json:"error,omitempty"`
}

func main() {
	objs, err := objects.Read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, obj := range objs {
		out := result{Conditions: []condition{}}
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			out.Error = err.Error()
		} else {
			out.Status = res.Status.String()
			out.Message = res.Message
			for _, c := range res.Conditions {
				out.Conditions = append(out.Conditions, condition{
					Type: c.Type.String(), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
				})
			}
		}
		if err := objects.Print(os.Stdout, out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}
