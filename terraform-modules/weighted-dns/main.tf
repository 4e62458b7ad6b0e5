resource "aws_route53_record" "weighted" {
  for_each = var.targets

  zone_id        = var.zone_id
  name           = var.name
  type           = "CNAME"
  ttl            = var.ttl
  set_identifier = each.key
  records        = [each.value.target]

  weighted_routing_policy {
    weight = each.value.weight
  }
}
