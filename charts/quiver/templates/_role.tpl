{{/*
One cluster role as a StatefulSet (stable identities: a node id is its pod's
ordinal, never reused), its headless Service (stable pod DNS names, published
before pods are ready so peers find each other while starting) and its
PodDisruptionBudget. Arguments: (dict "ctx" $ "role" "coord" "spec" .Values.coord
"port" 7100 "start" 1 "advertise" false "dataDir" "/var/lib/quiver" "cacheDir" ""
"maxUnavailable" 1) — "minAvailable" instead of "maxUnavailable" for coords.
*/}}
{{- define "quiver.role" -}}
{{- $ctx := .ctx -}}
{{- $name := include "quiver.headless" . -}}
{{- $sel := dict "ctx" $ctx "role" .role -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "quiver.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {{- include "quiver.selector" $sel | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .port }}
      targetPort: grpc
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  labels:
    {{- include "quiver.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
spec:
  serviceName: {{ $name }}
  replicas: {{ .spec.replicas }}
  # Node ids: the role's base plus the ordinal (docs/deploy.md).
  ordinals:
    start: {{ .start }}
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  selector:
    matchLabels: {{- include "quiver.selector" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "quiver.labels" $ctx | nindent 8 }}
        app.kubernetes.io/component: {{ .role }}
      annotations: {{- include "quiver.podAnnotations" (dict "ctx" $ctx "port" .port) | nindent 8 }}
    spec:
      {{- include "quiver.podCommon" $ctx | nindent 6 }}
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .role }}
          image: {{ include "quiver.image" $ctx }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          args: [{{ .role | quote }}, "--config", "/etc/quiver/config/{{ .role }}.toml"]
          env:
            {{- include "quiver.roleEnv" (dict "ctx" $ctx) | nindent 12 }}
            {{- if .advertise }}
            # Where the other processes reach this node: the pod's stable DNS name.
            - name: QUIVER_ADVERTISE
              value: "$(POD_NAME).{{ $name }}.$(POD_NAMESPACE).svc.cluster.local:{{ .port }}"
            {{- end }}
          ports:
            - name: grpc
              containerPort: {{ .port }}
          {{- include "quiver.probes" (dict "port" .port "mode" .probe) | nindent 10 }}
          resources: {{- toYaml .spec.resources | nindent 12 }}
          securityContext: {{- toYaml $ctx.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - {name: config, mountPath: /etc/quiver/config, readOnly: true}
            - {name: tmp, mountPath: /tmp}
            {{- if .dataDir }}
            - {name: data, mountPath: {{ .dataDir }}}
            {{- end }}
            {{- if .cacheDir }}
            - {name: cache, mountPath: {{ .cacheDir }}}
            {{- end }}
            {{- if $ctx.Values.clusterTls.enabled }}
            - {name: cluster-tls, mountPath: /etc/quiver/cluster-tls, readOnly: true}
            {{- end }}
            {{- if and .front $ctx.Values.tls.enabled }}
            - {name: tls, mountPath: /etc/quiver/tls, readOnly: true}
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "quiver.fullname" $ctx }}-config
            items:
              - {key: {{ .role }}.toml, path: {{ .role }}.toml}
        - name: tmp
          emptyDir: {}
        {{- if .cacheDir }}
        - name: cache
          emptyDir:
            sizeLimit: {{ .spec.cacheSize }}
        {{- end }}
        {{- if $ctx.Values.clusterTls.enabled }}
        - name: cluster-tls
          secret:
            secretName: {{ required "clusterTls.secretName is required with clusterTls.enabled" $ctx.Values.clusterTls.secretName }}
        {{- end }}
        {{- if and .front $ctx.Values.tls.enabled }}
        - name: tls
          secret:
            secretName: {{ required "tls.secretName is required with tls.enabled" $ctx.Values.tls.secretName }}
        {{- end }}
  {{- if .dataDir }}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        {{- with .spec.persistence.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ .spec.persistence.size }}
  {{- end }}
{{- if $ctx.Values.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "quiver.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
spec:
  {{- if .minAvailable }}
  minAvailable: {{ .minAvailable }}
  {{- else }}
  maxUnavailable: 1
  {{- end }}
  selector:
    matchLabels: {{- include "quiver.selector" $sel | nindent 6 }}
{{- end }}
{{- end -}}
