//! Harness for the ferrolb lab: namespaces, FRR, and a real Kubernetes control plane.
