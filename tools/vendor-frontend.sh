#!/usr/bin/env bash
# Vendors the front-end assets Rebook serves and tests with, from npm, at
# pinned versions: NHS.UK frontend (the dashboard's design system: its
# compiled CSS and JS and the images its CSS names) and axe-core (the
# browser test's accessibility check). Run it to change a version; the
# result is committed, and nothing is fetched at run time.
#
# The CSS's web fonts (Frutiger, from assets.nhs.uk) are removed: they are
# licensed for NHS.UK and would be fetched at run time; the design
# system's own fallback (Arial) is used instead.
set -euo pipefail
NHSUK=10.6.1
AXE=4.14.1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "nhsuk-frontend@$NHSUK" "axe-core@$AXE" >/dev/null
mkdir nhs axe
tar xzf "nhsuk-frontend-$NHSUK.tgz" -C nhs
tar xzf "axe-core-$AXE.tgz" -C axe

out="$root/internal/dashboard/static/nhsuk"
rm -rf "$out"
mkdir -p "$out/assets/images"
sed -e 's/@font-face{[^}]*}//g' -e 's#url(/assets/#url(/static/nhsuk/assets/#g' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' \
  nhs/package/dist/nhsuk/nhsuk-frontend.min.css > "$out/nhsuk-frontend.min.css"
sed -e 's#//\# sourceMappingURL=.*$##' nhs/package/dist/nhsuk/nhsuk-frontend.min.js > "$out/nhsuk-frontend.min.js"
cp nhs/package/dist/nhsuk/assets/images/*.svg nhs/package/dist/nhsuk/assets/images/favicon.ico "$out/assets/images/"
{
  echo "nhsuk-frontend $NHSUK, from npm (https://github.com/nhsuk/nhsuk-frontend), MIT licence:"
  echo
  cat "$root/tools/licences/nhsuk-frontend.txt"
} > "$out/LICENSE"

axe_out="$root/internal/e2e/testdata/axe"
rm -rf "$axe_out"
mkdir -p "$axe_out"
cp axe/package/axe.min.js "$axe_out/"
{
  echo "axe-core $AXE, from npm (https://github.com/dequelabs/axe-core), Mozilla Public License 2.0:"
  echo
  cat axe/package/LICENSE
} > "$axe_out/LICENSE"
echo "vendored nhsuk-frontend $NHSUK and axe-core $AXE"
