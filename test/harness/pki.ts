import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The certificates and keys a test control plane needs, as file paths. */
export interface ControlPlanePki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Generates a throw-away CA, a serving certificate for 127.0.0.1/localhost, a client
 * certificate for a `system:masters` admin, and a service-account signing key pair.
 */
export function generatePki(dir: string): ControlPlanePki {
  const p = (name: string) => join(dir, name);
  createCa(dir, "tde-test-ca");

  writeFileSync(
    p("serving.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
  );
  issue(dir, "serving", "/CN=kube-apiserver", "serving.ext");

  writeFileSync(p("admin.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
  issue(dir, "admin", "/O=system:masters/CN=tde-test-admin", "admin.ext");

  openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);

  return {
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    servingCert: p("serving.crt"),
    servingKey: p("serving.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
    serviceAccountKey: p("sa.key"),
    serviceAccountPub: p("sa.pub"),
  };
}

/** A self-signed CA (ca.key, ca.crt in `dir`), valid two days. */
function createCa(dir: string, cn: string): void {
  openssl(["genrsa", "-out", "ca.key", "2048"], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-sha256",
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
      "-out",
      "ca.crt",
    ],
    dir,
  );
}

function issue(dir: string, name: string, subject: string, extFile: string): void {
  openssl(["genrsa", "-out", `${name}.key`, "2048"], dir);
  openssl(["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`], dir);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      extFile,
      "-out",
      `${name}.crt`,
    ],
    dir,
  );
}

/** Issues a client certificate for another user (RBAC tests), signed by the same CA. */
export function issueClientCert(pki: ControlPlanePki, dir: string, user: string, groups: string[] = []) {
  const subject = `${groups.map((g) => `/O=${g}`).join("")}/CN=${user}`;
  const name = `user-${user.replace(/[^a-z0-9-]/gi, "_")}`;
  writeFileSync(join(dir, `${name}.ext`), "extendedKeyUsage=clientAuth\n");
  openssl(["genrsa", "-out", `${name}.key`, "2048"], dir);
  openssl(["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`], dir);
  openssl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", pki.caCert, "-CAkey", pki.caKey, "-CAcreateserial"].concat([
      "-days",
      "2",
      "-sha256",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ]),
    dir,
  );
  return {
    cert: readFileSync(join(dir, `${name}.crt`), "utf8"),
    key: readFileSync(join(dir, `${name}.key`), "utf8"),
  };
}

/** A throw-away CA and a serving certificate of its, also as a PKCS12 keystore (for a Java server). */
export interface ServerTls {
  /** the CA's certificate (PEM file): what clients trust (NODE_EXTRA_CA_CERTS, tlsOptions.ca) */
  caCert: string;
  caPem: string;
  cert: string;
  key: string;
  /** the serving certificate, its key and chain as a PKCS12 keystore */
  pkcs12: string;
  pkcs12Password: string;
}

/**
 * Generates a CA and a serving certificate for `hosts` (IP addresses and DNS names: the SANs),
 * with the PKCS12 keystore a Spring Boot server reads (`server.ssl.key-store`). The CA's key stays
 * in `dir`: nothing else can issue certificates clients of this CA accept.
 */
export function generateServerTls(dir: string, hosts: readonly string[], cn = "tde-test-server"): ServerTls {
  const p = (name: string) => join(dir, name);
  createCa(dir, `${cn}-ca`);
  const sans = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  writeFileSync(
    p("serving.ext"),
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  issue(dir, "serving", `/CN=${cn}`, "serving.ext");
  const pkcs12Password = randomBytes(12).toString("hex");
  openssl(
    [
      "pkcs12",
      "-export",
      "-in",
      "serving.crt",
      "-inkey",
      "serving.key",
      "-certfile",
      "ca.crt",
      "-name",
      "server",
      "-passout",
      `pass:${pkcs12Password}`,
      "-out",
      "serving.p12",
    ],
    dir,
  );
  return {
    caCert: p("ca.crt"),
    caPem: readFileSync(p("ca.crt"), "utf8"),
    cert: p("serving.crt"),
    key: p("serving.key"),
    pkcs12: p("serving.p12"),
    pkcs12Password,
  };
}
