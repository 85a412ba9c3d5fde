package main

import "fmt"

// Issue #20's memory target: at N = 100,000 certificates with 50,000 unrelated Secrets, the operator's
// peak RSS above the empty operator's at most 2.5 MiB per 1000 certificates.
const (
	perThousandTargetMiB       = 2.5
	perThousandTargetN         = 100000
	perThousandTargetUnrelated = 50000
)

// emptyOperator measures the operator as started in a cluster holding only its connection.
func (b *bench) emptyOperator() (*operatorUsage, error) {
	snap, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	u := usageSince(snap, snap)
	return &u, nil
}

// perThousand is the peak RSS above the empty operator's per 1000 certificates (0 without both).
func (r *results) perThousand() float64 {
	if r.Empty == nil || r.Config.N == 0 {
		return 0
	}
	peak := r.peakRSS()
	if peak == 0 {
		return 0
	}
	return (peak - r.Empty.PeakRSSMiB) / (float64(r.Config.N) / 1000)
}

func (r *results) memoryTargets() []target {
	const name = "peak RSS above the empty operator at most 2.5 MiB per 1000 certificates at N=100000 with 50000 unrelated Secrets"
	per := r.perThousand()
	if per == 0 {
		return []target{{Name: name, Measured: "no empty-operator baseline or no scenario measured the operator", Met: "not measured"}}
	}
	measured := fmt.Sprintf("(%.1f − %.1f MiB) / %g = %.2f MiB per 1000 at N=%d, %d unrelated Secrets",
		r.peakRSS(), r.Empty.PeakRSSMiB, float64(r.Config.N)/1000, per, r.Config.N, r.Config.Unrelated)
	if r.Config.N >= perThousandTargetN && r.Config.Unrelated >= perThousandTargetUnrelated && r.Import != nil {
		return []target{{Name: name, Measured: measured, Met: metText(per <= perThousandTargetMiB)}}
	}
	return []target{{Name: name, Measured: measured + " (smaller than the target's scale)", Met: "not measured"}}
}
