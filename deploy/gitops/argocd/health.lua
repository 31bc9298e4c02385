-- Argo CD health of the tde.dev kinds (KeyProtector, EncryptedServer, EncryptedDatabase), the
-- health model of docs/operating.md (R27). Argo CD runs a health script from argocd-cm with only
-- the base, table, package and a reduced os library: no string or math library here.
-- Progressing: no status yet, a generation not yet observed, deleting, Reconciling=True (work
--   under way, or waiting for what its message names), Ready not True.
-- Degraded: Stalled=True (a refused or terminal spec, Inaccessible, a key a person must fix).
--   Until the operator writes Stalled, the same cases are read from the state and conditions.
-- Healthy: Ready=True for the current generation, nothing stalled.
local hs = { status = "Progressing", message = "Waiting for the tde-operator to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local function condition(kind)
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or fallback
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local function set(status, message)
  hs.status = status
  hs.message = message
  return hs
end

if obj.metadata.deletionTimestamp ~= nil or obj.status.state == "Deleting" then
  return set("Progressing", "Deleting: the operator releases this resource's keys and envelope")
end

local ready = condition("Ready")
local generation = obj.metadata.generation
local observed = nil
if ready ~= nil then
  observed = ready.observedGeneration
end
if observed == nil then
  observed = obj.status.observedGeneration
end
if ready == nil or (generation ~= nil and observed ~= nil and observed < generation) then
  if generation == nil then
    return hs
  end
  return set("Progressing", "Waiting for the tde-operator to observe generation " .. generation)
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return set("Degraded", describe(stalled, "Stalled"))
end
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return set("Progressing", describe(reconciling, "Reconciling"))
end

-- An operator that does not write Stalled yet: the same verdicts from what it does write.
if stalled == nil then
  local refused = condition("ProtectorChangeAccepted")
  if refused ~= nil and refused.status == "False" then
    return set("Degraded", describe(refused, "ProtectorChangeRefused"))
  end
  local terminal = {
    ServiceManagedKeyNotAllowed = true, RevertToServerKeyNotAllowed = true, PrimaryIsNotPrimary = true,
    TooManySecondaries = true, SecondaryNeedsDatabaseProtector = true, NotListedByPrimary = true,
    NotAllowedBySource = true, MissingRestoreKeys = true, ForeignEnvelope = true, EnvelopeLost = true,
    KeyCheckValueMismatch = true, KeyTypeNotAllowed = true, KeySizeNotAllowed = true,
    ExpiryNotAllowed = true, KeyNotRecoverable = true, MissingPermissions = true,
  }
  if obj.status.state == "Inaccessible" then
    -- Ready names the cause (for a database: its server, or its own key)
    local cause = condition("KeyAccessible")
    if ready.status == "False" then
      cause = ready
    end
    if cause ~= nil and cause.reason == "Inaccessible" then
      return set("Degraded", describe(cause, "Inaccessible"))
    end
    return set("Degraded", "Inaccessible: " .. describe(cause, "key access lost past the grace period"))
  end
  if ready.status == "False" and terminal[ready.reason] then
    return set("Degraded", describe(ready, "NotReady"))
  end
  if obj.kind == "KeyProtector" then
    local accessible = condition("Accessible")
    local definitive = {
      KeyDisabled = true, KeyExpired = true, KeyNotFound = true, PermissionDenied = true, AuthenticationFailed = true,
    }
    if accessible ~= nil and accessible.status == "False" and definitive[accessible.reason] then
      return set("Degraded", describe(accessible, "KeyNotAccessible"))
    end
  end
  local blocked = condition("RotationBlocked")
  if blocked ~= nil and blocked.status == "True" then
    return set("Progressing", describe(blocked, "RotationBlocked"))
  end
end

if ready.status == "True" then
  return set("Healthy", describe(ready, "Ready"))
end
return set("Progressing", describe(ready, "NotReady"))
