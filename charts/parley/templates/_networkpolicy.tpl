{{/*
Pieces of the NetworkPolicies. The release's pods are denied everything by
common-networkpolicy.yaml; each component's policy then allows exactly its own traffic.
*/}}

{{/* Egress rule to NATS: the bundled NATS's pods, or the external servers' ports anywhere. */}}
{{- define "parley.networkPolicy.natsEgress" -}}
{{- if .Values.nats.url }}
- ports:
    {{- range (include "parley.nats.externalPorts" . | fromJsonArray) }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- else }}
- to:
    - podSelector:
        matchLabels:
          {{- include "parley.component.selectorLabels" (dict "root" . "component" "nats") | nindent 10 }}
  ports:
    - protocol: TCP
      port: 4222
{{- end }}
{{- end }}

{{/* Egress rule to Redis: the bundled Redis's pod, or the external server's port anywhere. */}}
{{- define "parley.networkPolicy.redisEgress" -}}
{{- if .Values.redis.url }}
- ports:
    - protocol: TCP
      port: {{ include "parley.redis.externalPort" . }}
{{- else }}
- to:
    - podSelector:
        matchLabels:
          {{- include "parley.component.selectorLabels" (dict "root" . "component" "redis") | nindent 10 }}
  ports:
    - protocol: TCP
      port: 6379
{{- end }}
{{- end }}

{{/* Egress rule to the OTLP collector (config.otlpEndpoint's port, 4318 by default), when traces are exported. */}}
{{- define "parley.networkPolicy.otlpEgress" -}}
{{- if eq .Values.config.otelExporter "otlp" }}
{{- $url := .Values.config.otlpEndpoint | default "http://localhost:4318" }}
{{- $parsed := urlParse $url }}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $parsed.host) | default (ternary "443" "80" (eq $parsed.scheme "https")) }}
- ports:
    - protocol: TCP
      port: {{ atoi $port }}
{{- end }}
{{- end }}

{{/* Egress rules to the external TURN servers' ports (rooms' health probe), UDP and TCP. */}}
{{- define "parley.networkPolicy.externalTurnEgress" -}}
{{- $ports := list }}
{{- range .Values.rooms.externalTurn.servers }}
{{- range splitList " " . }}
{{- if . }}
{{- $default := ternary "5349" "3478" (hasPrefix "turns:" .) }}
{{- $port := regexReplaceAll "^[a-z]+:(\\[[^]]*\\]|[^:?]*)(:([0-9]+))?.*$" . "${3}" | default $default }}
{{- $ports = append $ports (atoi $port) }}
{{- end }}
{{- end }}
{{- end }}
{{- with ($ports | uniq) }}
- ports:
    {{- range . }}
    - protocol: UDP
      port: {{ . }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Ingress rule: Prometheus scrapes the named port. Call with (dict "root" $ "port" "http"). */}}
{{- define "parley.networkPolicy.fromPrometheus" -}}
- from:
    - namespaceSelector:
        {{- toYaml .root.Values.networkPolicy.prometheus.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .root.Values.networkPolicy.prometheus.podSelector | nindent 8 }}
  ports:
    - protocol: TCP
      port: {{ .port }}
{{- end }}

{{/* Ingress rule: the ingress controller reaches the named port. */}}
{{- define "parley.networkPolicy.fromIngressController" -}}
- from:
    - namespaceSelector:
        {{- toYaml .root.Values.networkPolicy.ingressController.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .root.Values.networkPolicy.ingressController.podSelector | nindent 8 }}
  ports:
    - protocol: TCP
      port: {{ .port }}
{{- end }}

{{/* Policy metadata + podSelector of one component. Call with (dict "root" $ "component" NAME). */}}
{{- define "parley.networkPolicy.header" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "parley.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "parley.component.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
{{- end }}

{{/* The usual policy of an HTTP service behind the Ingress: in from the controller and Prometheus; out to NATS and Redis. */}}
{{- define "parley.networkPolicy.webService" -}}
{{- $sel := dict "root" .root "component" .component }}
{{ include "parley.networkPolicy.header" $sel }}
  ingress:
    {{- include "parley.networkPolicy.fromIngressController" (dict "root" .root "port" "http") | nindent 4 }}
    {{- include "parley.networkPolicy.fromPrometheus" (dict "root" .root "port" "http") | nindent 4 }}
  egress:
    {{- include "parley.networkPolicy.natsEgress" .root | nindent 4 }}
    {{- include "parley.networkPolicy.redisEgress" .root | nindent 4 }}
    {{- include "parley.networkPolicy.otlpEgress" .root | nindent 4 }}
    {{- if eq .component "rooms" }}
    {{- include "parley.networkPolicy.externalTurnEgress" .root | nindent 4 }}
    {{- end }}
{{- end }}
