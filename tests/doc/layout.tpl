{{- range . }}{{ .Depth }} {{ .RegoPackageName }} ({{ .Annotations.Scope }}): {{ .Annotations.Title }}
{{ end -}}
