{{/*
A PodMonitor over the pods of an operator-made pool (relays, SFUs): they have no shared
Service (one per member), so Prometheus scrapes the pods' `http` port.
Call with (dict "root" $ "component" NAME "selector" SELECTOR-LABELS-YAML).
*/}}
{{- define "parley.podMonitor" -}}
{{- $sel := dict "root" .root "component" .component }}
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {{ include "parley.component.fullname" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "parley.component.labels" $sel | nindent 4 }}
    {{- with .root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- .selector | nindent 6 }}
  podMetricsEndpoints:
    - port: http
      path: /metrics
      interval: {{ .root.Values.serviceMonitor.interval }}
{{- end }}
