#include "node/web_ui.h"

#include <httplib.h>

namespace irt::node {

void mount_web_ui(httplib::Server& server) { shared::mount_web_assets(server, web_assets(), "tablet UI"); }

}  // namespace irt::node
