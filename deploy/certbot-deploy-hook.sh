#!/bin/sh
# certbot's deploy hook for natter's own TLS (docs/DEPLOY.md, "TLS").
#
#   certbot certonly --standalone -d chat.example.com \
#       --deploy-hook /usr/local/lib/natter/certbot-deploy-hook.sh
#
# certbot runs it after each issue and renewal, with RENEWED_LINEAGE set to
# the certificate's directory (/etc/letsencrypt/live/chat.example.com). The
# service's dynamic user cannot read /etc/letsencrypt (root only), so the
# pair is copied to a directory of its own, readable by one group the unit
# adds (SupplementaryGroups=natter-tls), then natter is told to reload:
# new connections get the new certificate, open ones keep theirs, and a
# bad pair is logged and the old one kept.
#
# Environment (defaults for the unit in deploy/):
#   NATTER_TLS_DIR     where natter's --tls-cert and --tls-key point (/etc/natter/tls)
#   NATTER_TLS_GROUP   the group that may read them (natter-tls)
#   NATTER_RELOAD      the command that sends natter SIGHUP (systemctl reload natter)
set -eu

: "${RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE; run this as its --deploy-hook}"
dir=${NATTER_TLS_DIR:-/etc/natter/tls}
group=${NATTER_TLS_GROUP:-natter-tls}
reload=${NATTER_RELOAD:-systemctl reload natter}

install -d -m 0750 -g "$group" "$dir"
# Both files are written beside the old ones, then renamed into place, so
# that natter never reads half a file (and a reload between the two renames
# would only find a mismatched pair, which it refuses, keeping the old one).
install -m 0640 -g "$group" "$RENEWED_LINEAGE/privkey.pem" "$dir/privkey.pem.new"
install -m 0640 -g "$group" "$RENEWED_LINEAGE/fullchain.pem" "$dir/fullchain.pem.new"
mv -f "$dir/privkey.pem.new" "$dir/privkey.pem"
mv -f "$dir/fullchain.pem.new" "$dir/fullchain.pem"
$reload
