//! `kubectl kustomize` of `manifests/` with opt-in components, shared by the tests that render them
//! (`manifests`, `manifests_metallb`, `helm`).

use ferrolb_testbed::Lab;
use std::path::PathBuf;
use std::process::Command;

/// Renders `manifests/` with `components` (names under `manifests/components/`, in this order) through an
/// overlay written to `<lab dir>/<name>`, with the lab's kubectl; panics with kubectl's error when it fails.
pub fn render(lab: &Lab, name: &str, components: &[&str]) -> String {
    let overlay = lab.dir().join(name);
    std::fs::create_dir_all(&overlay).unwrap();
    // kustomize takes only relative paths to other kustomizations.
    let up = "../".repeat(overlay.components().count() - 1);
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let base = format!(
        "{up}{}",
        manifests.display().to_string().trim_start_matches('/')
    );
    let components: Vec<String> = components
        .iter()
        .map(|c| format!("{base}/components/{c}"))
        .collect();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{base}]\n\
             components: [{}]\n",
            components.join(", ")
        ),
    )
    .unwrap();
    let out = Command::new(lab.kubectl_path())
        .arg("--kubeconfig")
        .arg(lab.kubeconfig_path())
        .arg("kustomize")
        .arg(&overlay)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        overlay.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
