{{/*
Names, labels and the pieces every Parley workload shares.

Every name below is cut to 63 characters because Kubernetes object names that become DNS
labels (Services, and the label values that repeat them) may not be longer (RFC 1123).
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, or `<release>-<chart>`, or the release
name alone when it already contains the chart name. Cut to 63 characters (DNS label limit).
*/}}
{{- define "parley.fullname" -}}
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

{{/* `<chart>-<version>` for the helm.sh/chart label (a label value: at most 63 characters). */}}
{{- define "parley.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Per-component object names: `<fullname>-<component>`, cut to 63 characters (DNS label
limit; Services carry these names). Call with (dict "root" $ "component" "rooms").
*/}}
{{- define "parley.component.fullname" -}}
{{- printf "%s-%s" (include "parley.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "parley.rooms.fullname" -}}
{{- include "parley.component.fullname" (dict "root" . "component" "rooms") }}
{{- end }}

{{- define "parley.signaling.fullname" -}}
{{- include "parley.component.fullname" (dict "root" . "component" "signaling") }}
{{- end }}

{{- define "parley.metrics.fullname" -}}
{{- include "parley.component.fullname" (dict "root" . "component" "metrics") }}
{{- end }}

{{- define "parley.logpurge.fullname" -}}
{{- include "parley.component.fullname" (dict "root" . "component" "logpurge") }}
{{- end }}

{{- define "parley.operator.fullname" -}}
{{- include "parley.component.fullname" (dict "root" . "component" "operator") }}
{{- end }}

{{/* The operator's ServiceAccount (a DNS subdomain, but kept at 63 like every other name). */}}
{{- define "parley.operator.serviceAccountName" -}}
{{- include "parley.operator.fullname" . }}
{{- end }}

{{/*
The default RelayPool's name: `<fullname>-relays`, cut to 52 characters because the
operator names each relay's Pod and Service `<pool>-<10-character id>`, which must stay
within the 63-character DNS label limit.
*/}}
{{- define "parley.relay.poolName" -}}
{{- printf "%s-relays" (include "parley.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/*
The Secret with the TURN REST shared secrets (keys `current`, `previous`): secrets.existingTurnSecret or
`<fullname>-turn` (63: a DNS subdomain, kept to the label limit like every other name).
*/}}
{{- define "parley.relay.turnSecretName" -}}
{{- if .Values.secrets.existingTurnSecret }}
{{- .Values.secrets.existingTurnSecret }}
{{- else }}
{{- include "parley.component.fullname" (dict "root" . "component" "turn") }}
{{- end }}
{{- end }}

{{/*
Selector labels of the default pool's relay pods: the labels the operator puts on every
relay Pod and Service (it does not copy the release's labels, so `instance` is absent).
*/}}
{{- define "parley.relay.selectorLabels" -}}
app.kubernetes.io/component: relay
parley.dev/pool: {{ include "parley.relay.poolName" . }}
{{- end }}

{{/*
Worker processes of each relay of the default pool, as the operator counts them
(operator/parley_operator/spec.py, PoolSpec.relay_workers): the whole cores of
relays.resources.limits.cpu ("2", "2500m", 3), at least 1.
*/}}
{{- define "parley.relay.workers" -}}
{{- $cpu := toString (dig "limits" "cpu" "" .Values.relays.resources) }}
{{- $cores := 0.0 }}
{{- if hasSuffix "m" $cpu }}
{{- $cores = divf (float64 (trimSuffix "m" $cpu)) 1000 }}
{{- else if $cpu }}
{{- $cores = float64 $cpu }}
{{- end }}
{{- max 1 (int (floor $cores)) }}
{{- end }}

{{/*
The default pool's worker ports as "FIRST LAST" (relays.ports.workerBase to workerBase+N-1 for
N workers), or "" when off: workerBase 0, or one worker (the operator then passes none).
*/}}
{{- define "parley.relay.workerPorts" -}}
{{- $base := int .Values.relays.ports.workerBase }}
{{- $workers := int (include "parley.relay.workers" .) }}
{{- if and $base (gt $workers 1) }}
{{- printf "%d %d" $base (add $base $workers -1) }}
{{- end }}
{{- end }}

{{/* The default SfuPool's name (52: room for the operator's `-xxxxx` pod suffix). */}}
{{- define "parley.sfu.poolName" -}}
{{- printf "%s-sfu" (include "parley.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the default SfuPool's SFU pods (the labels the operator gives them). */}}
{{- define "parley.sfu.selectorLabels" -}}
app.kubernetes.io/component: sfu
parley.dev/pool: {{ include "parley.sfu.poolName" . }}
{{- end }}

{{/* The Secret with the services' shared keys: secrets.existingSecret or `<fullname>-keys`. */}}
{{- define "parley.secrets.name" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "parley.component.fullname" (dict "root" . "component" "keys") }}
{{- end }}
{{- end }}

{{/* The Secret with the NATS and Redis URLs (they may carry credentials). */}}
{{- define "parley.secrets.connectionsName" -}}
{{- include "parley.component.fullname" (dict "root" . "component" "connections") }}
{{- end }}

{{/*
The bundled NATS's StatefulSet and Service name, cut to 52 characters: a StatefulSet adds
`-<11-character revision hash>` to its name in the controller-revision-hash label, whose
value may not exceed 63 characters.
*/}}
{{- define "parley.nats.fullname" -}}
{{- printf "%s-nats" (include "parley.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/* The bundled Redis's StatefulSet and Service name, cut to 52 characters (see parley.nats.fullname). */}}
{{- define "parley.redis.fullname" -}}
{{- printf "%s-redis" (include "parley.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/* NATS URL(s) the services use: nats.url, or the bundled NATS's Service. */}}
{{- define "parley.nats.url" -}}
{{- if .Values.nats.url }}
{{- .Values.nats.url }}
{{- else }}
{{- printf "nats://%s.%s.svc:4222" (include "parley.nats.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Redis URL the services use: redis.url, or the bundled Redis's Service. */}}
{{- define "parley.redis.url" -}}
{{- if .Values.redis.url }}
{{- .Values.redis.url }}
{{- else }}
{{- printf "redis://%s.%s.svc:6379/0" (include "parley.redis.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
Ports of the external NATS servers (one per comma-separated URL, 4222 when a URL has
none), for the egress NetworkPolicy. Renders a JSON list.
*/}}
{{- define "parley.nats.externalPorts" -}}
{{- $ports := list }}
{{- range splitList "," .Values.nats.url }}
{{- $host := (urlParse (trim .)).host }}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $host) | default "4222" }}
{{- $ports = append $ports (atoi $port) }}
{{- end }}
{{- $ports | uniq | toJson }}
{{- end }}

{{/* Port of the external Redis (6379 when the URL has none). */}}
{{- define "parley.redis.externalPort" -}}
{{- $host := (urlParse .Values.redis.url).host }}
{{- regexFind "[0-9]+$" (regexFind ":[0-9]+$" $host) | default "6379" }}
{{- end }}

{{/* The Parley image reference: repository@digest, or repository:tag (default appVersion). */}}
{{- define "parley.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "parley.labels" -}}
helm.sh/chart: {{ include "parley.chart" . }}
app.kubernetes.io/name: {{ include "parley.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: parley
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the whole release (every pod the chart or the operator makes). */}}
{{- define "parley.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "parley.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "rooms"). */}}
{{- define "parley.component.selectorLabels" -}}
{{ include "parley.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's objects. Call with (dict "root" $ "component" "rooms"). */}}
{{- define "parley.component.labels" -}}
{{ include "parley.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The restricted Pod Security Standard, pod level: non-root, RuntimeDefault seccomp.
Call with the UID to run as.
*/}}
{{- define "parley.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted Pod Security Standard, container level. */}}
{{- define "parley.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The NATS and Redis users (space-separated), read from the files services/common/access.py
renders, so that the chart never lists them twice.
*/}}
{{- define "parley.nats.users" -}}
{{- $found := regexFindAll "\\{user: [a-z]+," (.Files.Get "files/nats-authorization.conf") -1 }}
{{- $users := list }}
{{- range $found }}{{ $users = append $users (. | trimPrefix "{user: " | trimSuffix ",") }}{{ end }}
{{- join " " $users }}
{{- end }}

{{- define "parley.redis.users" -}}
{{- $found := regexFindAll "(?m)^user [a-z]+ on" (.Files.Get "files/redis-users.acl") -1 }}
{{- $users := list }}
{{- range $found }}{{ $users = append $users (. | trimPrefix "user " | trimSuffix " on") }}{{ end }}
{{- join " " $users }}
{{- end }}

{{/*
Environment every Parley service container gets; takes (dict "root" $ "component" NAME).
The NATS and Redis URLs are the component's own (its own users), from the connections Secret.
*/}}
{{- define "parley.commonEnv" -}}
{{- $conn := include "parley.secrets.connectionsName" .root }}
- name: PARLEY_NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $conn }}
      key: {{ .component }}NatsUrl
{{- if has .component (include "parley.redis.users" .root | splitList " ") }}
- name: PARLEY_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $conn }}
      key: {{ .component }}RedisUrl
{{- end }}
{{- with .root }}
- name: PARLEY_HASH_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "parley.secrets.name" . }}
      key: hashKey
- name: PARLEY_LOG_JSON
  value: "true"
- name: PARLEY_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: PARLEY_OTEL_EXPORTER
  value: {{ .Values.config.otelExporter | quote }}
{{- with .Values.config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
{{- end }}
- name: PARLEY_RETENTION_DAYS
  value: {{ .Values.config.retentionDays | quote }}
{{- /* rooms (diagnostic address), signalling and metrics (per-address limits) read it */}}
- name: PARLEY_TRUSTED_PROXIES
  value: {{ .Values.config.trustedProxies | toJson | quote }}
{{- with .Values.config.securityContact }}
- name: PARLEY_SECURITY_CONTACT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}
