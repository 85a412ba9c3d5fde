package graphsim

import (
	"fmt"
	"net/http"
	"strings"
)

// user answers GET /users/{id-or-userPrincipalName}, honouring $select.
func (c *call) user(idOrUPN string) {
	if c.r.Method != http.MethodGet {
		c.noRoute()
		return
	}
	u, ok := c.t.user(idOrUPN)
	if !ok {
		c.graphError(http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf(
			"Resource '%s' does not exist or one of its queried reference-property objects are not present.", idOrUPN))
		return
	}
	props := map[string]any{"id": u.ID, "userPrincipalName": u.UserPrincipalName, "displayName": u.DisplayName}
	out := map[string]any{"@odata.context": c.s.url + "/beta/$metadata#users/$entity"}
	sel := c.r.URL.Query().Get("$select")
	if sel == "" {
		for k, v := range props {
			out[k] = v
		}
	} else {
		for _, name := range strings.Split(sel, ",") {
			name = strings.TrimSpace(name)
			v, known := props[name]
			if !known {
				c.graphError(http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.user'.", name))
				return
			}
			out[name] = v
		}
		out["@odata.context"] = c.s.url + "/beta/$metadata#users(" + sel + ")/$entity"
	}
	writeJSON(c.w, http.StatusOK, out)
}
