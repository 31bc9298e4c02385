/**
 * The agent reaches KEKs through the same providers as the operator, but with the pod's own
 * identity: its service account for Local keys (it needs `get` on the key's Secret), its
 * workload or managed identity for Azure Key Vault (it needs `get` and `unwrapKey`). The key id
 * in each envelope wrap says which provider and which exact version.
 */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import type { Wrap } from "../crypto/index.js";
import { AzureKeyVaultProvider } from "../kms/azure-key-vault.js";
import { type AzureSettings, azureProviderOptions } from "../kms/azure-settings.js";
import { LocalKeyProvider, parseLocalKeyID } from "../kms/local.js";
import { type KekProvider, KeyAccessError, type KeyReference } from "../kms/provider.js";
import type { UnwrapCommand } from "./args.js";
import type { WrapUnwrapper } from "./unwrap.js";

const AZURE_KEY_ID = /^https:\/\/[^/]+\/keys\/([^/]+)(?:\/([^/]+))?\/?$/;

/** The provider reference for the exact KEK version that made a wrap. */
export function keyReferenceFor(wrap: Wrap, identity: UnwrapCommand["identity"]): KeyReference {
  const local = parseLocalKeyID(wrap.keyID);
  if (local) {
    return { provider: "Local", namespace: local.namespace, keyName: local.name, keyID: wrap.keyID };
  }
  const azure = AZURE_KEY_ID.exec(wrap.keyID);
  if (azure) {
    return {
      provider: "AzureKeyVault",
      namespace: "",
      keyName: azure[1] as string,
      keyID: wrap.keyID,
      identity: {
        type: identity.type,
        ...(identity.clientID === undefined ? {} : { clientID: identity.clientID }),
        ...(identity.tenantID === undefined ? {} : { tenantID: identity.tenantID }),
      },
    };
  }
  throw new KeyAccessError(
    "KeyNotFound",
    `the wrap's key id ${wrap.keyID} is neither a Key Vault key id (https://VAULT/keys/NAME/VERSION) nor a local one (local://NAMESPACE/NAME/VERSION)`,
  );
}

/** A KubeConfig for the Local provider: --kubeconfig, else in-cluster, else the default lookup. */
export function agentKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export interface AgentProviderOptions {
  identity: UnwrapCommand["identity"];
  azureSettings?: AzureSettings;
  kubeconfig: string | undefined;
  /** replace the providers (tests) */
  local?: KekProvider;
  azure?: KekProvider;
}

/** A WrapUnwrapper over the real providers, each made on first use. */
export function providerUnwrapper(options: AgentProviderOptions): WrapUnwrapper {
  let local = options.local;
  let azure = options.azure;
  return async (wrap, wrapped) => {
    const ref = keyReferenceFor(wrap, options.identity);
    let provider: KekProvider;
    if (ref.provider === "Local") {
      local ??= new LocalKeyProvider(agentKubeConfig(options.kubeconfig).makeApiClient(CoreV1Api));
      provider = local;
    } else {
      // a CA file that cannot be used fails the unwrap with what to fix (exit 1, never a key file)
      azure ??= new AzureKeyVaultProvider(azureProviderOptions(options.azureSettings));
      provider = azure;
    }
    return provider.unwrap(ref, wrapped);
  };
}
