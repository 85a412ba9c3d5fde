-- Argo CD health check for every intune.certops.dev kind. They all report status.observedGeneration and a
-- Ready condition, so one script serves them all; argocd-cm-patch.yaml carries it once per kind.
-- argocd-cm scripts run without Lua's string library, so only base and table functions are used here.

local hs = {}

-- Reasons that trying again will not clear: the spec, a Secret, the certificate or the tenant must change.
-- Every other reason (GraphError, which is transient, Throttled, ConnectionNotReady, Deleting, Progressing, and any reason a
-- newer operator adds) means the operator is still working on it.
local terminal = {
  InvalidPfx = true,
  WrongPassword = true,
  NoPrivateKey = true,
  KeyMismatch = true,
  CertificateExpired = true,
  CertificateNotYetValid = true,
  WeakKey = true,
  PublicKeyInvalid = true,
  InvalidPassword = true,
  UnsupportedPadding = true,
  InvalidCertificate = true,
  SecretNotFound = true,
  SecretKeyMissing = true,
  InvalidSpec = true,
  UserNotFound = true,
  RecordNotFound = true,
  ProfileNotFound = true,
  CreateOutcomeUnknown = true,
  CredentialInvalid = true,
  ConnectionNotFound = true,
  GraphRejected = true,
  AmbientCredentialsNotAllowed = true,
  EndpointNotAllowed = true,
  AccessDenied = true,
  RecordClaimed = true,
  -- A UserPfxCertificateSet with children failing for one of the reasons above.
  ChildrenFailed = true,
}

local function messageOf(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason
end

-- A suspended resource makes no Graph calls at all, so nothing would ever progress: say so first.
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the operator makes no Graph calls for this resource"
  return hs
end

-- Until the operator has seen the current spec, the conditions describe an older one.
local status = obj.status or {}
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local ready = nil
local expiring = nil
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Expiring" then
    expiring = condition
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  -- Argo CD has no warning status: a certificate due for renewal (UserPfxCertificate's Expiring condition,
  -- True within spec.renewBefore of notAfter) is still Healthy, and says so. Once expired, Ready is False
  -- with reason CertificateExpired: Degraded.
  if expiring ~= nil and expiring.status == "True" then
    hs.message = messageOf(expiring)
    return hs
  end
elseif ready.status == "False" and terminal[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = messageOf(ready)
return hs
