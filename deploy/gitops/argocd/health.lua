-- Argo CD health of the tde.dev kinds (KeyProtector, EncryptedServer, EncryptedDatabase).
-- Healthy: the Ready condition is True for the current generation.
-- Degraded: the resource is Inaccessible (key access lost past the grace period, R10), or a
--   KeyProtector's key is not accessible.
-- Progressing: anything else (not yet observed, provisioning, revalidating, rotating).
local hs = { status = "Progressing", message = "Waiting for the tde-operator to report status" }
if obj.status == nil then
  return hs
end

local function condition(kind)
  if obj.status.conditions == nil then
    return nil
  end
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

local ready = condition("Ready")

if obj.status.state == "Inaccessible" then
  hs.status = "Degraded"
  hs.message = describe(condition("KeyAccessible") or ready, "Inaccessible")
  return hs
end

if obj.kind == "KeyProtector" then
  local accessible = condition("Accessible")
  if accessible ~= nil and accessible.status == "False" then
    hs.status = "Degraded"
    hs.message = describe(accessible, "KeyNotAccessible")
    return hs
  end
end

if ready == nil then
  return hs
end

local generation = obj.metadata.generation
local observed = ready.observedGeneration or obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the tde-operator to observe generation " .. generation
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

hs.message = describe(ready, "NotReady")
return hs
