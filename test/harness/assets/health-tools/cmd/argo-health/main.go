// argo-health runs an Argo CD resource health script (a resource.customizations.health.* entry of
// argocd-cm) against each object read on stdin, in the Lua environment Argo CD gives such a
// script: gopher-lua with the standard libraries skipped, then only package, base, table and a
// reduced os (time) opened, the object as the global `obj`, and a one-second deadline. Prints
// {status, message} per object as one JSON line; a status outside Argo CD's set becomes Unknown,
// as Argo CD does.
//
// Usage: argo-health SCRIPT.lua < objects.json
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"

	"tde.dev/testbin/health-tools/internal/objects"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

// Argo CD's health codes (gitops-engine pkg/health).
var validStatus = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argo-health SCRIPT.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	objs, err := objects.Read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, obj := range objs {
		if err := objects.Print(os.Stdout, evaluate(string(script), obj)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

func evaluate(script string, obj map[string]interface{}) result {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openReducedOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return result{Error: fmt.Sprintf("opening %q: %v", lib.name, err)}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return result{Error: err.Error()}
	}
	top := l.Get(-1)
	table, ok := top.(*lua.LTable)
	if !ok {
		return result{Error: fmt.Sprintf("expect table output from Lua script, not %s", top.Type())}
	}
	status := lua.LVAsString(table.RawGetString("status"))
	message := lua.LVAsString(table.RawGetString("message"))
	if !validStatus[status] {
		return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return result{Status: status, Message: message}
}

// openReducedOs registers an os table holding only time(), the part of os a health script may use.
func openReducedOs(l *lua.LState) int {
	mod := l.RegisterModule(lua.OsLibName, map[string]lua.LGFunction{
		"time": func(l *lua.LState) int {
			l.Push(lua.LNumber(time.Now().Unix()))
			return 1
		},
	})
	l.Push(mod)
	return 1
}

// toLua turns a decoded JSON value (integers as int64) into Lua values: objects and arrays
// become tables, numbers numbers, null nil.
func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]interface{}:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	default:
		return lua.LNil
	}
}
