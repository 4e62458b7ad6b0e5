resource "google_container_cluster" "this" {
  project                  = var.project
  location                 = var.location
  name                     = var.cluster_name
  min_master_version       = var.kubernetes_version
  network                  = var.network
  subnetwork               = var.subnetwork
  remove_default_node_pool = true
  initial_node_count       = 1
  resource_labels          = var.labels
  deletion_protection      = false

  workload_identity_config {
    workload_pool = "${var.project}.svc.id.goog"
  }
}

resource "google_container_node_pool" "default" {
  project    = var.project
  location   = var.location
  cluster    = google_container_cluster.this.name
  name       = "default-pool"
  node_count = var.node_count

  node_config {
    machine_type = var.machine_type
    labels       = var.labels
    oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
  }
}
