package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

// -seed gives graphsim, before the import scenario, the record of every certificate exactly as the
// operator would write it (graphsim's POST /_sim/userPfxCertificates/{tenant}), so the import measures
// adoption: each resource's first pass reads its record, finds it matching (matchesRecord) and writes
// nothing to Graph. It is how the benchmark reaches N=100,000: Intune's write limit, and the CRD's
// maximum writeRequestsPer20Seconds of 200, put an import of 100,000 through Graph at ≥ 10,000 s.
// The run then measures the operator's memory and its steady state at that scale, not import speed.

// seedBatch is the records per admin request (graphsim reads at most 8 MiB per body).
const seedBatch = 5000

// The fields the bench's connection (stack.ConnectionSpec) and resources (userPfxCertificate) make the
// operator send.
const (
	seedProviderName = "Microsoft Software Key Storage Provider"
	seedKeyName      = "PFXEncryptionKey"
	seedPadding      = "oaepSha512"
	seedPurpose      = "smimeEncryption"
)

// seedRecord is the record the operator would create for c.
func seedRecord(c *certificate) graphsim.UserPFXCertificate {
	return graphsim.UserPFXCertificate{Thumbprint: c.thumbprint, IntendedPurpose: seedPurpose,
		UserPrincipalName: c.user.UserPrincipalName, StartDateTime: c.notBefore.UTC(), ExpirationDateTime: c.notAfter.UTC(),
		ProviderName: seedProviderName, KeyName: seedKeyName, PaddingScheme: seedPadding}
}

// seedRecords stores the N certificates' records in graphsim.
func (b *bench) seedRecords(ctx context.Context) error {
	logf("Seeding graphsim with the %d records the operator would write (it adopts them: -seed)", len(b.certs))
	for start := 0; start < len(b.certs); start += seedBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+seedBatch, len(b.certs))
		recs := make([]graphsim.UserPFXCertificate, 0, end-start)
		for _, c := range b.certs[start:end] {
			recs = append(recs, seedRecord(c))
		}
		if err := b.s.Sim(http.MethodPost, "userPfxCertificates/"+stack.TenantID, recs, nil); err != nil {
			return fmt.Errorf("seeding graphsim's records %d to %d: %w", start, end, err)
		}
	}
	return nil
}
