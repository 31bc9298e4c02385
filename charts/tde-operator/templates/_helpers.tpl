{{/* The chart name, truncated to a valid label value. */}}
{{- define "tde-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects. */}}
{{- define "tde-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tde-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "tde-operator.labels" -}}
helm.sh/chart: {{ include "tde-operator.chart" . }}
{{ include "tde-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tde-operator
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "tde-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tde-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tde-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tde-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tde-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs in every namespace it watches, and nothing more (R30):
- its three kinds: read, watch, update (finalizers, annotations) and patch; status written
  through the status subresource; finalizers subresource for owner references;
- Secrets: envelopes (type tde.dev/envelope), created, updated, shredded (R2, R25), and Local
  KEKs read (R7);
- Events: one per state change (R12);
- StatefulSets and Deployments: read them, record on them (annotations) and scale them through
  /scale (ScaleToZero, R10/R11); the same for each kind in enforcement.scaleTargets (a database
  operator's cluster resource: ScaleToZero through /scale, or Patch enforcement);
- NetworkPolicies: create and delete the deny-all-ingress policy (NetworkIsolation, R10).
*/}}
{{- define "tde-operator.namespacedRules" -}}
- apiGroups: ["tde.dev"]
  resources: ["keyprotectors", "encryptedservers", "encrypteddatabases"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["tde.dev"]
  resources: ["keyprotectors/status", "encryptedservers/status", "encrypteddatabases/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["tde.dev"]
  resources: ["keyprotectors/finalizers", "encryptedservers/finalizers", "encrypteddatabases/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets", "deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets/scale", "deployments/scale"]
  verbs: ["get", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "delete"]
{{- range .Values.enforcement.scaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources:
    {{- range .resources }}
    - {{ . | quote }}
    - {{ printf "%s/scale" . | quote }}
    {{- end }}
  verbs: ["get", "patch"]
{{- end }}
{{- end }}
