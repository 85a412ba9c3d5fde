// Package argocd tests the Argo CD health checks of config/argocd: the script's verdict for every outcome of
// every kind, and that argocd-cm-patch.yaml carries exactly that script for exactly the kinds the CRDs serve.
package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// healthStatus is Argo CD's health.HealthStatus: what a health script returns.
type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Argo CD's health status codes; a script returning anything else is reported as Unknown.
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

// runHealthScript runs script the way Argo CD's util/lua VM.ExecuteHealthLua does for a check from argocd-cm:
// without the standard libraries (only package, base and table are opened; Argo CD also opens a reduced os
// library, which these scripts do not need, so leaving it out proves they do not use it), with a one second
// deadline, the object as the global `obj`, and the returned table read as {status, message}.
func runHealthScript(obj map[string]any, script string) (healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return healthStatus{}, fmt.Errorf("failed to open the Lua library %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return healthStatus{}, fmt.Errorf("the health script failed: %w", err)
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	// Argo CD encodes the table as JSON and decodes it into its HealthStatus: fields must be strings.
	fields := map[string]string{}
	for _, key := range []string{"status", "message"} {
		switch v := table.RawGetString(key).(type) {
		case lua.LString:
			fields[key] = string(v)
		case *lua.LNilType:
		default:
			return healthStatus{}, fmt.Errorf("the script returned %s %s, not a string", key, v.Type())
		}
	}
	encoded, err := json.Marshal(fields)
	if err != nil {
		return healthStatus{}, err
	}
	var result healthStatus
	if err := json.Unmarshal(encoded, &result); err != nil {
		return healthStatus{}, err
	}
	if !validStatuses[result.Status] {
		return healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return result, nil
}

// toLua converts an unstructured object as Argo CD's decodeValue does: maps become tables with string keys,
// slices become sequences, numbers (int64 on a live object, float64 from JSON) become Lua numbers.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		table := l.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}
