package controller

import (
	"errors"
	"strings"
	"testing"
)

func TestSignInMessageKeepsEntraExplanationOnly(t *testing.T) {
	err := errors.New("ClientSecretCredential authentication failed. \nPOST https://login.example/tenant/oauth2/v2.0/token\n" +
		"--------\nRESPONSE 401: 401 Unauthorized\n--------\n{\n  \"error\": \"invalid_client\",\n" +
		`  "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1234\r\nCorrelation ID: 5678",` + "\n}\n")
	got := signInMessage(err)
	want := "sign-in failed: ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret provided."
	if got != want {
		t.Fatalf("signInMessage = %q, want %q", got, want)
	}
	if strings.Contains(got, "Trace ID") {
		t.Error("trace id kept")
	}
}
