package graphsim_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The service's less convenient behaviours: act-then-fail faults, lists lagging behind writes, PATCH
// answering 204, recryption creates answered without id, PascalCase enums, closed types.

const (
	recryptionPath = "/beta/pfxRecryptionRequests"
	pfxUserPath    = "/beta/pfxUserCertificates"
	deviceA        = "6de0af45-af45-6de0-45af-e06d45afe06d"
	profileA       = "6389d896-d896-6389-96d8-896396d88963"
)

func recryptionBody(device string) map[string]any {
	return map[string]any{
		"@odata.type": "#microsoft.graph.pfxRecryptionRequest", "tenantId": tenantID, "userId": userID,
		"deviceId": device, "profileId": profileA, "thumbprint": thumb(1), "status": 1, "sourceType": 1,
	}
}

func pfxUserBody(tp string) map[string]any {
	return map[string]any{
		"@odata.type": "#microsoft.graph.pfxUserCertificate", "tenantId": tenantID, "userId": userID,
		"thumbprint": tp, "userUpn": userUPN, "encryptedPfxBlob": base64.StdEncoding.EncodeToString([]byte("pfx")),
		"encryptedPfxPassword": "cHc=", "paddingScheme": 5, "status": 1, "intendedPurpose": 1,
	}
}

func stateBody(tp string) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.managedDeviceCertificateState", "devicePlatform": "iOS",
		"certificateKeyUsage": "digitalSignature", "deviceDisplayName": "phone", "certificateThumbprint": tp}
}

// kindCase is one kind's collection, how to create a record of it, a PATCH it accepts and how to read
// what graphsim holds.
type kindCase struct {
	name       string
	collection string
	create     func(i int) map[string]any
	patch      map[string]any
	// stored returns the ids graphsim holds and the value of the patched property of id.
	stored func(s *graphsim.Server, id string) (ids []string, patched string)
}

func kindCases() []kindCase {
	return []kindCase{
		{"userPfxCertificates", pfxPath, func(i int) map[string]any { return pfxBody(userUPN, thumb(i)) },
			map[string]any{"keyName": "patched"},
			func(s *graphsim.Server, id string) (ids []string, patched string) {
				for _, r := range s.UserPFXCertificates(tenantID) {
					ids = append(ids, r.ID)
					if r.ID == id {
						patched = r.KeyName
					}
				}
				return ids, patched
			}},
		{"managedDeviceCertificateStates", iosStates, func(i int) map[string]any { return stateBody(thumb(i)) },
			map[string]any{"deviceDisplayName": "patched"},
			func(s *graphsim.Server, id string) (ids []string, patched string) {
				for _, r := range s.ManagedDeviceCertificateStates(tenantID) {
					ids = append(ids, r.ID)
					if r.ID == id {
						patched = r.DeviceDisplayName
					}
				}
				return ids, patched
			}},
		{"pfxRecryptionRequests", recryptionPath, func(i int) map[string]any {
			return recryptionBody(fmt.Sprintf("6de0af45-af45-6de0-45af-%012d", i))
		}, map[string]any{"deviceKeyThumbprint": "patched"},
			func(s *graphsim.Server, id string) (ids []string, patched string) {
				for _, r := range s.PfxRecryptionRequests(tenantID) {
					ids = append(ids, r.ID)
					if r.ID == id {
						patched = r.DeviceKeyThumbprint
					}
				}
				return ids, patched
			}},
		{"pfxUserCertificates", pfxUserPath, func(i int) map[string]any { return pfxUserBody(thumb(i)) },
			map[string]any{"providerName": "patched"},
			func(s *graphsim.Server, id string) (ids []string, patched string) {
				for _, r := range s.PfxUserCertificates(tenantID) {
					ids = append(ids, r.ID)
					if r.ID == id {
						patched = r.ProviderName
					}
				}
				return ids, patched
			}},
	}
}

// realismServer has the base tenant plus the device configuration iosStates addresses.
func realismServer(t *testing.T, mutate func(*graphsim.Config)) (*graphsim.Server, string) {
	t.Helper()
	cfg := baseConfig()
	cfg.Tenants[0].DeviceConfigurations = []graphsim.DeviceConfiguration{{ID: "cfg-1", ProfileType: "iosScep"}}
	if mutate != nil {
		mutate(&cfg)
	}
	s := start(t, cfg)
	return s, secretToken(t, s)
}

// createdID is the id of the record a create made: from the answer, or else the one record of the
// kind graphsim holds that before did not exist.
func createdID(t *testing.T, k kindCase, s *graphsim.Server, before []string, r reply) string {
	t.Helper()
	if r.status == http.StatusCreated {
		if id, _ := r.json(t)["id"].(string); id != "" {
			return id
		}
	}
	after, _ := k.stored(s, "")
	var fresh []string
	for _, id := range after {
		if !containsString(before, id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("%s: %d new records (%v) after a create answered %d", k.name, len(fresh), fresh, r.status)
	}
	return fresh[0]
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// send is call without failing on a transport error (a dropped connection): status 0 then.
func send(t *testing.T, s *graphsim.Server, token, method, path string, body any) reply {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var req *http.Request
	if body == nil {
		req, err = http.NewRequest(method, s.URL()+path, nil)
	} else {
		req, err = http.NewRequest(method, s.URL()+path, strings.NewReader(string(data)))
	}
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	// A fresh connection per request: a dropped one must not be retried by the transport.
	client := s.Client()
	client.Transport.(*http.Transport).DisableKeepAlives = true
	resp, err := client.Do(req)
	if err != nil {
		return reply{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func TestActThenFailScriptHitsEveryWriteOfEveryKindAfterItActed(t *testing.T) {
	for _, k := range kindCases() {
		t.Run(k.name, func(t *testing.T) {
			s, token := realismServer(t, nil)

			// POST acts, then 504.
			s.ActThenFailNext(http.StatusGatewayTimeout)
			before, _ := k.stored(s, "")
			r := send(t, s, token, http.MethodPost, k.collection, k.create(1))
			if r.status != http.StatusGatewayTimeout || r.errorCode(t) != "GatewayTimeout" {
				t.Fatalf("POST: %d %s, want 504 GatewayTimeout", r.status, r.body)
			}
			id := createdID(t, k, s, before, r)
			last := s.Journal()[len(s.Journal())-1]
			expectStatus(t, call(t, s, token, http.MethodGet, k.collection+"/"+id, nil), http.StatusOK)
			if last.Status != http.StatusGatewayTimeout || last.ActedStatus != http.StatusCreated {
				t.Fatalf("journal %+v, want status 504 after a 201", last)
			}

			// PATCH acts, then 500.
			s.ActThenFailNext(http.StatusInternalServerError)
			r = send(t, s, token, http.MethodPatch, k.collection+"/"+id, k.patch)
			if r.status != http.StatusInternalServerError {
				t.Fatalf("PATCH: %d %s, want 500", r.status, r.body)
			}
			if _, patched := k.stored(s, id); patched != "patched" {
				t.Fatalf("PATCH answered 500 but did not act: %q", patched)
			}

			// A write that fails anyway keeps its own answer and leaves the script entry to the next.
			s.ActThenFailNext(graphsim.DropConnection)
			expectStatus(t, send(t, s, token, http.MethodDelete, k.collection+"/no-such-id", nil), http.StatusNotFound)
			// Reads never take an entry.
			expectStatus(t, send(t, s, token, http.MethodGet, k.collection+"/"+id, nil), http.StatusOK)

			// DELETE acts, then the connection is closed.
			if r = send(t, s, token, http.MethodDelete, k.collection+"/"+id, nil); r.status != 0 {
				t.Fatalf("DELETE: answered %d, want the connection closed", r.status)
			}
			if ids, _ := k.stored(s, ""); containsString(ids, id) {
				t.Fatalf("DELETE's connection was closed but the record is still there")
			}
			// The client sees the closed connection before graphsim journals the request: wait for it.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				last = s.Journal()[len(s.Journal())-1]
				if last.Method == http.MethodDelete || time.Now().After(deadline) {
					break
				}
			}
			if last.Method != http.MethodDelete || last.Status != 0 || last.ActedStatus != http.StatusNoContent {
				t.Fatalf("journal %+v, want status 0 after a 204", last)
			}
			expectStatus(t, send(t, s, token, http.MethodGet, k.collection+"/"+id, nil), http.StatusNotFound)
		})
	}
}

func TestActThenFailScriptComesAfterTheScriptBeforeEffect(t *testing.T) {
	s, token := realismServer(t, nil)
	s.SetFaults(graphsim.Faults{Script: []int{503}, ActThenFailScript: []int{500, 0, 504}})
	var got []string
	for i := range 4 {
		r := send(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(i)))
		got = append(got, fmt.Sprint(r.status))
	}
	// 503 before any effect (takes no act entry), then 500 after acting, 201, 504 after acting.
	if fmt.Sprint(got) != "[503 500 201 504]" || len(s.UserPFXCertificates(tenantID)) != 3 {
		t.Fatalf("statuses %v, %d records; want [503 500 201 504] and 3 records", got, len(s.UserPFXCertificates(tenantID)))
	}
	// What is left of the scripts shows on the admin surface; appending leaves the other faults alone.
	s.SetFaults(graphsim.Faults{ThrottleRate: 0, ActThenFailScript: []int{500, 504}, PatchNoContent: true})
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/faults/actThenFail", `[-1]`), http.StatusNoContent)
	var f graphsim.Faults
	if err := json.Unmarshal(admin(t, s, http.MethodGet, "/_sim/faults", "").body, &f); err != nil ||
		fmt.Sprint(f.ActThenFailScript) != "[500 504 -1]" || !f.PatchNoContent {
		t.Fatalf("faults %+v (%v)", f, err)
	}
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/faults/actThenFail", `[504, "x"]`), http.StatusBadRequest)
}

func TestActThenFailRates(t *testing.T) {
	s, token := realismServer(t, func(c *graphsim.Config) {
		c.Faults = graphsim.Faults{ActThenFailRate: 1, ActThenFailStatus: http.StatusInternalServerError}
	})
	r := send(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1)))
	if r.status != http.StatusInternalServerError || len(s.UserPFXCertificates(tenantID)) != 1 {
		t.Fatalf("POST: %d, %d records; want 500 after the record was created", r.status, len(s.UserPFXCertificates(tenantID)))
	}
	expectStatus(t, send(t, s, token, http.MethodGet, pfxPath, nil), http.StatusOK) // reads are not faulted
	// The second POST of the same certificate collides: its 409 is not replaced.
	expectStatus(t, send(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1))), http.StatusConflict)

	s.SetFaults(graphsim.Faults{ActThenFailRate: 1}) // default status 504
	expectStatus(t, send(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(2))), http.StatusGatewayTimeout)

	s.SetFaults(graphsim.Faults{ActThenDropRate: 1})
	if r := send(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(3))); r.status != 0 {
		t.Fatalf("POST answered %d, want the connection closed", r.status)
	}
	if n := len(s.UserPFXCertificates(tenantID)); n != 3 {
		t.Fatalf("%d records, want 3: every faulted write acted", n)
	}
}

func TestFaultDrawsDependOnlyOnTheSeedAndTheRequestNumber(t *testing.T) {
	// Every configured rate is drawn once per Graph request whatever the method, so a sequence of writes
	// meets the same faults as the same number of reads would have.
	sequence := func(method string) string {
		s, token := realismServer(t, func(c *graphsim.Config) {
			c.Seed = 5
			c.Faults = graphsim.Faults{ErrorRate: 0.2, ErrorStatus: 500, ThrottleRate: 0.2, ActThenFailRate: 0.3}
		})
		var out []string
		for i := range 30 {
			body := any(nil)
			path := pfxPath
			if method == http.MethodPost {
				body = pfxBody(userUPN, thumb(i))
			}
			out = append(out, fmt.Sprint(send(t, s, token, method, path, body).status))
		}
		return strings.Join(out, " ")
	}
	posts, again := sequence(http.MethodPost), sequence(http.MethodPost)
	if posts != again {
		t.Fatalf("same seed, different faults:\n%s\n%s", posts, again)
	}
	if !strings.Contains(posts, "504") || !strings.Contains(posts, "500") || !strings.Contains(posts, "201") {
		t.Fatalf("writes met %s", posts)
	}
	gets := strings.Fields(sequence(http.MethodGet))
	for i, p := range strings.Fields(posts) {
		// Where a write met an error before any effect, the read met the same; reads ignore act-then-fail.
		if (p == "500" || p == "429") != (gets[i] == p) {
			t.Fatalf("request %d: write %s, read %s", i, p, gets[i])
		}
	}
}

// listIDs lists a collection (all pages) with an optional $filter.
func listIDs(t *testing.T, s *graphsim.Server, token, collection, filter string) []string {
	t.Helper()
	path := collection
	if filter != "" {
		path += "?$filter=" + url.QueryEscape(filter)
	}
	_, ids := collect(t, s, token, path)
	return ids
}

func TestListsLagBehindCreatesAndDeletesOfEveryKind(t *testing.T) {
	filters := map[string]func(int) string{
		"userPfxCertificates":            func(i int) string { return "thumbprint eq '" + thumb(i) + "'" },
		"managedDeviceCertificateStates": func(i int) string { return "certificateThumbprint eq '" + thumb(i) + "'" },
		"pfxRecryptionRequests":          func(i int) string { return fmt.Sprintf("deviceId eq 6de0af45-af45-6de0-45af-%012d", i) },
		"pfxUserCertificates":            func(i int) string { return "thumbprint eq '" + thumb(i) + "'" },
	}
	for _, k := range kindCases() {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock()
			s, token := realismServer(t, func(c *graphsim.Config) {
				c.Now = clk.Now
				c.Faults = graphsim.Faults{CreateListLag: 10 * time.Second, DeleteListLag: 30 * time.Second}
			})
			before, _ := k.stored(s, "")
			r := call(t, s, token, http.MethodPost, k.collection, k.create(1))
			expectStatus(t, r, http.StatusCreated)
			id := createdID(t, k, s, before, r)
			expectStatus(t, call(t, s, token, http.MethodGet, k.collection+"/"+id, nil), http.StatusOK) // GET by id at once
			for _, f := range []string{"", filters[k.name](1)} {
				if ids := listIDs(t, s, token, k.collection, f); containsString(ids, id) {
					t.Fatalf("listed (filter %q) right after the create: %v", f, ids)
				}
			}
			clk.Advance(10 * time.Second)
			for _, f := range []string{"", filters[k.name](1)} {
				if ids := listIDs(t, s, token, k.collection, f); !containsString(ids, id) {
					t.Fatalf("not listed (filter %q) after CreateListLag: %v", f, ids)
				}
			}

			expectStatus(t, call(t, s, token, http.MethodDelete, k.collection+"/"+id, nil), http.StatusNoContent)
			expectStatus(t, call(t, s, token, http.MethodGet, k.collection+"/"+id, nil), http.StatusNotFound) // 404 at once
			expectStatus(t, call(t, s, token, http.MethodDelete, k.collection+"/"+id, nil), http.StatusNotFound)
			clk.Advance(29 * time.Second)
			for _, f := range []string{"", filters[k.name](1)} {
				if ids := listIDs(t, s, token, k.collection, f); !containsString(ids, id) {
					t.Fatalf("not listed (filter %q) 29 s after the delete: %v", f, ids)
				}
			}
			clk.Advance(time.Second)
			for _, f := range []string{"", filters[k.name](1)} {
				if ids := listIDs(t, s, token, k.collection, f); containsString(ids, id) {
					t.Fatalf("still listed (filter %q) after DeleteListLag: %v", f, ids)
				}
			}
		})
	}
}

func TestPatchCanAnswerNoContentForEveryKind(t *testing.T) {
	for _, k := range kindCases() {
		t.Run(k.name, func(t *testing.T) {
			s, token := realismServer(t, nil)
			before, _ := k.stored(s, "")
			r := call(t, s, token, http.MethodPost, k.collection, k.create(1))
			id := createdID(t, k, s, before, r)
			expectStatus(t, call(t, s, token, http.MethodPatch, k.collection+"/"+id, map[string]any{}), http.StatusOK) // default
			s.SetFaults(graphsim.Faults{PatchNoContent: true})
			r = call(t, s, token, http.MethodPatch, k.collection+"/"+id, k.patch)
			if r.status != http.StatusNoContent || len(r.body) != 0 {
				t.Fatalf("PATCH: %d %q, want 204 with no body", r.status, r.body)
			}
			if _, patched := k.stored(s, id); patched != "patched" {
				t.Fatalf("the 204 PATCH did not act: %q", patched)
			}
			// Errors stay errors.
			if r := call(t, s, token, http.MethodPatch, k.collection+"/"+id, map[string]any{"bogus": 1}); r.status != http.StatusBadRequest {
				t.Fatalf("bad PATCH: %d", r.status)
			}
		})
	}
}

func TestRecryptionRequestsFullResource(t *testing.T) {
	clk := newClock()
	s, token := realismServer(t, func(c *graphsim.Config) { c.Now = clk.Now })
	r := call(t, s, token, http.MethodPost, recryptionPath, recryptionBody(deviceA))
	expectStatus(t, r, http.StatusCreated)
	first := r.json(t)["id"].(string)

	s.SetFaults(graphsim.Faults{RecryptionCreateWithoutID: true})
	other := "7de0af45-af45-6de0-45af-e06d45afe06d"
	r = call(t, s, token, http.MethodPost, recryptionPath, recryptionBody(other))
	expectStatus(t, r, http.StatusCreated)
	got := r.json(t)
	if _, has := got["id"]; has || got["deviceId"] != other || got["eTag"] == "" || got["@odata.type"] != "#microsoft.graph.pfxRecryptionRequest" {
		t.Fatalf("created without id: %v", got)
	}
	// The client finds its request by its natural key: quoted or Guid literal, any case.
	for _, f := range []string{
		"userId eq '" + userID + "' and deviceId eq '" + other + "' and profileId eq '" + profileA + "'",
		"userId eq " + strings.ToUpper(userID) + " and deviceId eq " + other + " and profileId eq " + profileA,
		"deviceId eq '" + strings.ToUpper(other) + "' and thumbprint eq '" + thumb(1) + "'",
	} {
		ids := listIDs(t, s, token, recryptionPath, f)
		if len(ids) != 1 || ids[0] == first {
			t.Fatalf("filter %q: %v", f, ids)
		}
	}
	if ids := listIDs(t, s, token, recryptionPath, ""); len(ids) != 2 {
		t.Fatalf("list %v", ids)
	}
	expectStatus(t, call(t, s, token, http.MethodGet, recryptionPath+"?$filter="+url.QueryEscape("eTag eq 'x'"), nil), http.StatusBadRequest)
	second := listIDs(t, s, token, recryptionPath, "deviceId eq "+other)[0]
	expectStatus(t, call(t, s, token, http.MethodGet, recryptionPath+"/"+second, nil), http.StatusOK)

	// Update merges; the id and createdTime stay.
	clk.Advance(time.Minute)
	r = call(t, s, token, http.MethodPatch, recryptionPath+"/"+second, map[string]any{"status": 3})
	expectStatus(t, r, http.StatusOK)
	if got := r.json(t); got["status"] != float64(3) || got["deviceId"] != other || got["id"] != second ||
		got["lastModifiedTime"] != clk.Now().Format(time.RFC3339Nano) {
		t.Fatalf("patched %v", got)
	}
	expectStatus(t, call(t, s, token, http.MethodPatch, recryptionPath+"/"+second, map[string]any{"userId": "bob"}), http.StatusBadRequest)
	expectStatus(t, call(t, s, token, http.MethodDelete, recryptionPath+"/"+second, nil), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodPatch, recryptionPath+"/"+second, map[string]any{"status": 3}), http.StatusNotFound)
}

func TestPfxUserCertificatesFullResource(t *testing.T) {
	s, token := realismServer(t, nil)
	r := call(t, s, token, http.MethodPost, pfxUserPath, pfxUserBody(thumb(1)))
	expectStatus(t, r, http.StatusCreated)
	got := r.json(t)
	id, _ := got["id"].(string)
	if !guidRE.MatchString(id) || got["encryptedPfxBlob"] != "AA==" || got["encryptedPfxPassword"] != "" || got["eTag"] == "" {
		t.Fatalf("created %v", got)
	}
	// No natural key is documented: the same certificate again is another record.
	r = call(t, s, token, http.MethodPost, pfxUserPath, pfxUserBody(thumb(1)))
	expectStatus(t, r, http.StatusCreated)
	if r.json(t)["id"] == id {
		t.Fatal("two creates got one id")
	}
	if st := s.PfxUserCertificates(tenantID); len(st) != 2 || st[0].EncryptedPfxBlob == "AA==" {
		t.Fatalf("stored %+v", st)
	}
	if ids := listIDs(t, s, token, pfxUserPath, "userId eq "+userID+" and thumbprint eq '"+thumb(1)+"'"); len(ids) != 2 {
		t.Fatalf("filtered list %v", ids)
	}
	for name, body := range map[string]map[string]any{
		"padding out of range": {"paddingScheme": 9},
		"userId not a GUID":    {"userId": "bob"},
		"unknown property":     {"id2": "x"},
	} {
		if r := call(t, s, token, http.MethodPost, pfxUserPath, body); r.status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	expectStatus(t, call(t, s, token, http.MethodDelete, pfxUserPath+"/"+id, nil), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodGet, pfxUserPath+"/"+id, nil), http.StatusNotFound)
	if ids := listIDs(t, s, token, pfxUserPath, ""); len(ids) != 1 {
		t.Fatalf("list after delete %v", ids)
	}
}

func TestPascalCaseEnums(t *testing.T) {
	s, token := realismServer(t, nil)
	body := pfxBody(userUPN, thumb(1))
	body["intendedPurpose"], body["paddingScheme"] = "SmimeEncryption", "OaepSha512"
	r := call(t, s, token, http.MethodPost, pfxPath, body)
	expectStatus(t, r, http.StatusCreated)
	if got := r.json(t); got["intendedPurpose"] != "smimeEncryption" || got["paddingScheme"] != "oaepSha512" {
		t.Fatalf("created %v, want the canonical camelCase", got)
	}
	id := r.json(t)["id"].(string)
	expectStatus(t, call(t, s, token, http.MethodPatch, pfxPath+"/"+id, map[string]any{"intendedPurpose": "SmimeSigning"}), http.StatusOK)
	if st := s.UserPFXCertificates(tenantID); st[0].IntendedPurpose != "smimeSigning" {
		t.Fatalf("stored %q", st[0].IntendedPurpose)
	}
	for _, bad := range []string{"SMIMEENCRYPTION", "smime_encryption"} {
		body["intendedPurpose"] = bad
		expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, body), http.StatusBadRequest)
	}
	st := stateBody(thumb(2))
	st["devicePlatform"], st["certificateKeyUsage"] = "IOS", "DigitalSignature"
	r = call(t, s, token, http.MethodPost, iosStates, st)
	expectStatus(t, r, http.StatusCreated)
	if got := r.json(t); got["devicePlatform"] != "iOS" || got["certificateKeyUsage"] != "digitalSignature" {
		t.Fatalf("created %v", got)
	}

	s.SetFaults(graphsim.Faults{PascalCaseEnums: true})
	got := call(t, s, token, http.MethodGet, pfxPath+"/"+id, nil).json(t)
	if got["intendedPurpose"] != "SmimeSigning" || got["paddingScheme"] != "OaepSha512" {
		t.Fatalf("read %v", got)
	}
	page := call(t, s, token, http.MethodGet, iosStates, nil).json(t)
	item := page["value"].([]any)[0].(map[string]any)
	if item["devicePlatform"] != "IOS" || item["certificateKeyUsage"] != "DigitalSignature" || item["deviceDisplayName"] != "phone" {
		t.Fatalf("listed %v", item)
	}
	// pfxUserCertificate's enums are Int32: untouched.
	r = call(t, s, token, http.MethodPost, pfxUserPath, pfxUserBody(thumb(3)))
	if got := r.json(t); got["paddingScheme"] != float64(5) {
		t.Fatalf("pfxUserCertificate %v", got)
	}
}

func TestUnknownPropertiesAreRefusedByEveryKindAndMethod(t *testing.T) {
	for _, k := range kindCases() {
		t.Run(k.name, func(t *testing.T) {
			s, token := realismServer(t, nil)
			before, _ := k.stored(s, "")
			body := k.create(1)
			body["notAProperty"] = 1
			r := call(t, s, token, http.MethodPost, k.collection, body)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "notAProperty") {
				t.Fatalf("POST: %d %s", r.status, r.body)
			}
			// OData property names are case-sensitive.
			r = call(t, s, token, http.MethodPost, k.collection, map[string]any{"Thumbprint": thumb(1)})
			expectStatus(t, r, http.StatusBadRequest)
			if after, _ := k.stored(s, ""); len(after) != len(before) {
				t.Fatal("a refused POST created a record")
			}
			r = call(t, s, token, http.MethodPost, k.collection, k.create(1))
			id := createdID(t, k, s, before, r)
			for _, patch := range []map[string]any{{"notAProperty": 1}, {"@odata.type": "#microsoft.graph.somethingElse"}} {
				if r := call(t, s, token, http.MethodPatch, k.collection+"/"+id, patch); r.status != http.StatusBadRequest {
					t.Fatalf("PATCH %v: %d %s", patch, r.status, r.body)
				}
			}
		})
	}
}

func TestRealismOptionsLoadFromTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "graphsim.yaml")
	yaml := `
tenants: [{id: ` + tenantID + `}]
faults:
  actThenFailRate: 0.05
  actThenFailStatus: 500
  actThenDropRate: 0.02
  actThenFailScript: [504, -1]
  createListLag: 2s
  deleteListLag: 1500ms
  patchNoContent: true
  recryptionCreateWithoutId: true
  pascalCaseEnums: true
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := graphsim.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Faults
	if f.ActThenFailRate != 0.05 || f.ActThenFailStatus != 500 || f.ActThenDropRate != 0.02 || fmt.Sprint(f.ActThenFailScript) != "[504 -1]" ||
		f.CreateListLag != 2*time.Second || f.DeleteListLag != 1500*time.Millisecond || !f.PatchNoContent ||
		!f.RecryptionCreateWithoutID || !f.PascalCaseEnums {
		t.Fatalf("loaded %+v", f)
	}
	data, err := json.Marshal(f)
	if err != nil || !strings.Contains(string(data), `"createListLag":"2s"`) || !strings.Contains(string(data), `"deleteListLag":"1.5s"`) {
		t.Fatalf("marshalled %s (%v)", data, err)
	}
}

func TestFaultsSeedReseedsTheFaultChoice(t *testing.T) {
	sequence := func(configSeed int64) string {
		s, token := realismServer(t, func(c *graphsim.Config) { c.Seed = configSeed })
		s.SetFaults(graphsim.Faults{ErrorRate: 0.5, Seed: 99})
		var out []string
		for range 20 {
			out = append(out, fmt.Sprint(call(t, s, token, http.MethodGet, pfxPath, nil).status))
		}
		return strings.Join(out, " ")
	}
	if a, b := sequence(1), sequence(2); a != b || !strings.Contains(a, "503") || !strings.Contains(a, "200") {
		t.Fatalf("Faults.Seed 99 under config seeds 1 and 2:\n%s\n%s", a, b)
	}
}
