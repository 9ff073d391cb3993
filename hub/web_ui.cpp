#include "hub/web_ui.h"

#include <httplib.h>

namespace irt::hub {

void mount_web_ui(httplib::Server& server) { shared::mount_web_assets(server, web_assets(), "dashboard"); }

}  // namespace irt::hub
