package main.gke

warn contains "gke: no zone" if not input.zone
