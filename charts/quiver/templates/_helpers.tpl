{{/* Names, labels and the pieces every role's manifest shares. */}}

{{- define "quiver.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quiver.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "quiver.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "quiver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role: (dict "ctx" $ "role" "coord"). */}}
{{- define "quiver.selector" -}}
app.kubernetes.io/name: {{ include "quiver.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "quiver.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A role's headless Service name (stable pod DNS names). */}}
{{- define "quiver.headless" -}}
{{- printf "%s-%s" (include "quiver.fullname" .ctx) .role -}}
{{- end -}}

{{/* One pod's DNS name: (dict "ctx" $ "role" "coord" "ordinal" 1). */}}
{{- define "quiver.podHost" -}}
{{- $svc := include "quiver.headless" . -}}
{{- printf "%s-%v.%s.%s.svc.cluster.local" $svc .ordinal $svc .ctx.Release.Namespace -}}
{{- end -}}

{{/* Every coord's address, as a TOML array of strings. */}}
{{- define "quiver.coordAddrs" -}}
{{- $addrs := list -}}
{{- range $i := until (int .Values.coord.replicas) -}}
{{- $host := include "quiver.podHost" (dict "ctx" $ "role" "coord" "ordinal" (add1 $i)) -}}
{{- $addrs = append $addrs (printf "%q" (printf "%s:%v" $host $.Values.coord.port)) -}}
{{- end -}}
[{{ join ", " $addrs }}]
{{- end -}}

{{/* The object store as a TOML inline table (credentials come from the environment). */}}
{{- define "quiver.store" -}}
{{- $s := .Values.objectStore -}}
{{- $parts := list "kind = \"s3\"" (printf "bucket = %q" $s.bucket) (printf "region = %q" $s.region) -}}
{{- if $s.endpoint }}{{ $parts = append $parts (printf "endpoint = %q" $s.endpoint) }}{{ end -}}
{{- if $s.prefix }}{{ $parts = append $parts (printf "prefix = %q" $s.prefix) }}{{ end -}}
{{- if $s.allowHttp }}{{ $parts = append $parts "allow_http = true" }}{{ end -}}
{ {{- join ", " $parts -}} }
{{- end -}}

{{/* The Secret holding the object store's credentials ("" when none). */}}
{{- define "quiver.storeSecret" -}}
{{- if .Values.objectStore.existingSecret -}}
{{- .Values.objectStore.existingSecret -}}
{{- else if .Values.objectStore.accessKeyId -}}
{{- printf "%s-object-store" (include "quiver.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* A TOML table's body from a values map: key = value lines (strings quoted). */}}
{{- define "quiver.tomlBody" -}}
{{- range $k, $v := . }}
{{- if kindIs "string" $v }}
{{ $k }} = {{ $v | quote }}
{{- else if kindIs "bool" $v }}
{{ $k }} = {{ $v }}
{{- else }}
{{ $k }} = {{ $v | int64 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* MiB at which writes are refused: the value, else 85% of the memory limit. */}}
{{- define "quiver.maxMemoryMiB" -}}
{{- $r := .role -}}
{{- if $r.maxMemoryMiB -}}
{{- $r.maxMemoryMiB -}}
{{- else if and $r.resources $r.resources.limits $r.resources.limits.memory -}}
{{- $m := toString $r.resources.limits.memory -}}
{{- $mib := 0 -}}
{{- if hasSuffix "Gi" $m }}{{ $mib = mul (trimSuffix "Gi" $m | int) 1024 }}
{{- else if hasSuffix "Mi" $m }}{{ $mib = trimSuffix "Mi" $m | int }}
{{- else }}{{ fail (printf "resources.limits.memory %q: use Mi or Gi (or set maxMemoryMiB)" $m) }}
{{- end -}}
{{- div (mul $mib 85) 100 -}}
{{- else -}}
0
{{- end -}}
{{- end -}}

{{/* Environment every cluster role shares: its id from the StatefulSet ordinal, and credentials. */}}
{{- define "quiver.roleEnv" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
# The node id is the pod's ordinal (the StatefulSet's ordinals start at the role's id base).
- name: QUIVER_ID
  valueFrom: {fieldRef: {fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']"}}
{{- with include "quiver.storeSecret" .ctx }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.ctx.Values.objectStore.accessKeyIdKey }}}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.ctx.Values.objectStore.secretAccessKeyKey }}}}
{{- end }}
{{- if and .ctx.Values.auth.enabled .ctx.Values.auth.rootPasswordSecret }}
- name: QUIVER_ROOT_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ .ctx.Values.auth.rootPasswordSecret }}, key: {{ .ctx.Values.auth.rootPasswordKey }}}}
{{- end }}
{{- include "quiver.tracingEnv" .ctx }}
{{- end -}}

{{/* RUST_LOG, and OpenTelemetry export when tracing.otlpEndpoint is set. */}}
{{- define "quiver.tracingEnv" }}
- name: RUST_LOG
  value: info
{{- with .Values.tracing.otlpEndpoint }}
- name: QUIVER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: QUIVER_TRACE_SAMPLE_RATIO
  value: {{ $.Values.tracing.sampleRatio | quote }}
{{- end }}
{{- end -}}

{{/* Probes on a role's port: (dict "port" 7100 "mode" "http"|"https"|"tcp"). /readyz and
     /livez over HTTP(S); "tcp" (the port is open) where the port requires a client certificate. */}}
{{- define "quiver.probes" -}}
{{- $check := dict "tcpSocket" (dict "port" .port) -}}
{{- $live := $check -}}
{{- if ne .mode "tcp" -}}
{{- $scheme := ternary "HTTPS" "HTTP" (eq .mode "https") -}}
{{- $check = dict "httpGet" (dict "path" "/readyz" "port" .port "scheme" $scheme) -}}
{{- $live = dict "httpGet" (dict "path" "/livez" "port" .port "scheme" $scheme) -}}
{{- end }}
startupProbe:
  {{- toYaml $live | nindent 2 }}
  periodSeconds: 2
  failureThreshold: 150
readinessProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: 5
  failureThreshold: 2
livenessProbe:
  {{- toYaml $live | nindent 2 }}
  periodSeconds: 10
  failureThreshold: 6
{{- end -}}

{{/* The probe mode of internal ports and of the front door. */}}
{{- define "quiver.internalProbe" -}}
{{- ternary "tcp" "http" (.Values.clusterTls.enabled | default false) -}}
{{- end -}}
{{- define "quiver.frontProbe" -}}
{{- if .Values.tls.enabled -}}{{- ternary "tcp" "https" (.Values.tls.clientCa | default false) -}}{{- else -}}http{{- end -}}
{{- end -}}

{{- define "quiver.podAnnotations" -}}
checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
{{- if .ctx.Values.prometheusScrape }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- define "quiver.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
