package v1alpha1

// AnnotationReimport, set on a UserPfxCertificate to any new value (kubectl certops reimport writes an RFC 3339
// timestamp), asks the operator to push the record to Intune again now, even when nothing changed and the next
// drift check is not due: one PATCH (or a create, if Intune lost the record). The operator records the value it
// handled in status.reimportRequested, so each value forces exactly one push; setting the same value again does
// nothing. A suspended resource takes the request when it is resumed.
const AnnotationReimport = "intune.certops.dev/reimport"
