// Built against an installed Rillflow: every public header compiles here without the library's
// private dependencies, and the library works end to end.
#include <rillflow/rillflow.hpp>

#include <iostream>

int main() {
  auto pg = rillflow::EmbeddedPostgres::start();
  auto store = rillflow::Store::builder(pg.url()).schema("consumer").build();
  store.schema().sync();
  const auto id = rillflow::new_uuid();
  store.events().append_stream(id, rillflow::Expected::no_stream(),
                               {rillflow::Event("Installed", boost::json::object{{"ok", true}})});
  const auto events = store.events().read_stream(id);
  std::cout << "rillflow " << rillflow::version() << " installed: " << events.size() << " event\n";
  return events.size() == 1 ? 0 : 1;
}
