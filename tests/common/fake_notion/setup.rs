//! What a test arranges and inspects directly, as a person working in Notion would see it:
//! databases and their data sources, schema properties, pages and their blocks.

use chrono::Utc;
use serde_json::{Value, json};

use super::objects::{self, data_source_object, page_properties};
use super::values::{self, normalise_config};
use super::*;

impl FakeNotion {
    /// A database shared with the integration, holding one data source (named like the
    /// database) whose only property is a title property called `Name`. Returns (database id,
    /// data source id), dashed.
    pub fn add_database(&self, title: &str) -> (String, String) {
        self.add_database_with_title_property(title, "Name")
    }

    /// A database shared with the integration, holding one data source (named like the
    /// database) whose only property is a title property called `title_property`. Returns
    /// (database id, data source id), dashed.
    pub fn add_database_with_title_property(
        &self,
        title: &str,
        title_property: &str,
    ) -> (String, String) {
        let database = new_id();
        self.inner.lock().databases.push(Database {
            id: database.clone(),
            title: title.to_string(),
            shared: true,
            sources: Vec::new(),
            parent_page: new_id(),
            created: Utc::now(),
        });
        let source = self.add_source(&database, title, title_property);
        (database, source)
    }

    /// A further data source in `database`, whose only property is a title property called
    /// `Name`. Returns its id, dashed.
    pub fn add_data_source(&self, database: &str, name: &str) -> String {
        self.add_source(database, name, "Name")
    }

    fn add_source(&self, database: &str, name: &str, title_property: &str) -> String {
        let id = new_id();
        let now = Utc::now();
        {
            let mut st = self.inner.lock();
            let key = compact(database);
            let db = st
                .databases
                .iter_mut()
                .find(|d| compact(&d.id) == key)
                .unwrap_or_else(|| panic!("add_data_source: no database {database}"));
            db.sources.push(id.clone());
            let database = db.id.clone();
            st.sources.push(DataSource {
                id: id.clone(),
                name: name.to_string(),
                database,
                properties: vec![Property {
                    id: "title".to_string(),
                    name: title_property.to_string(),
                    kind: "title".to_string(),
                    config: json!({}),
                }],
                created: now,
                edited: now,
            });
        }
        self.inner.bump();
        id
    }

    /// A database (with one data source) that exists but is not shared with the integration:
    /// everything under it is 404 `object_not_found`. Returns its id, dashed.
    pub fn add_unshared_database(&self) -> String {
        let (database, _) = self.add_database("Private");
        self.set_shared(&database, false);
        database
    }

    /// Shares `database` with the integration, or takes the access away.
    pub fn set_shared(&self, database: &str, shared: bool) {
        let key = compact(database);
        self.inner
            .lock()
            .databases
            .iter_mut()
            .find(|d| compact(&d.id) == key)
            .unwrap_or_else(|| panic!("set_shared: no database {database}"))
            .shared = shared;
        self.inner.bump();
    }

    /// Sets property `name` of `data_source` to `configuration` (`{"number": {}}`, or with its
    /// `type`: `{"type": "select", "select": {"options": [{"name": "Up"}]}}`), adding it or
    /// replacing what it was (a new type included), as a person editing the database in Notion
    /// would. Nothing of this is a violation.
    pub fn set_property(&self, data_source: &str, name: &str, configuration: Value) {
        let kind = configuration["type"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                configuration
                    .as_object()
                    .and_then(|o| o.keys().find(|k| *k != "type").cloned())
            })
            .unwrap_or_else(|| panic!("set_property: {configuration} names no type"));
        let config = normalise_config(&kind, &configuration[&kind], &[]);
        {
            let mut st = self.inner.lock();
            let index = source(&st, data_source);
            let id = values::property_id(&st.sources[index].properties);
            let source = &mut st.sources[index];
            if let Some(property) = source.properties.iter_mut().find(|p| p.name == name) {
                property.kind = kind;
                property.config = config;
            } else {
                source.properties.push(Property {
                    id,
                    name: name.to_string(),
                    kind,
                    config,
                });
            }
            source.edited = Utc::now();
        }
        self.inner.bump();
    }

    /// A page in `data_source` made by a person, with `properties` written as the API takes
    /// them (`{"Name": {"title": [{"text": {"content": "x"}}]}}`); panics on what Notion would
    /// refuse. Returns its id, dashed.
    pub fn add_page(&self, data_source: &str, properties: Value) -> String {
        let id = {
            let mut st = self.inner.lock();
            let index = source(&st, data_source);
            let written = values::page_values(&mut st, index, &properties, "properties")
                .unwrap_or_else(|bad| panic!("add_page: {}", bad.message()));
            let now = Utc::now();
            let id = new_id();
            let source = st.sources[index].id.clone();
            st.pages.push(Page {
                id: id.clone(),
                data_source: source,
                values: written,
                created: now,
                edited: now,
                in_trash: false,
            });
            id
        };
        self.inner.bump();
        id
    }

    /// Sets properties of `page` as a person would (same form as [`FakeNotion::add_page`]).
    pub fn edit_page(&self, page: &str, properties: Value) {
        {
            let mut st = self.inner.lock();
            let index = page_of(&st, page);
            let source = st
                .source_index(&compact(&st.pages[index].data_source))
                .expect("a page's data source");
            let written = values::page_values(&mut st, source, &properties, "properties")
                .unwrap_or_else(|bad| panic!("edit_page: {}", bad.message()));
            let page = &mut st.pages[index];
            page.values.extend(written);
            page.edited = Utc::now();
        }
        self.inner.bump();
    }

    /// Moves `page` to the trash, or out of it, as a person would.
    pub fn set_page_trashed(&self, page: &str, in_trash: bool) {
        {
            let mut st = self.inner.lock();
            let index = page_of(&st, page);
            st.pages[index].in_trash = in_trash;
        }
        self.inner.bump();
    }

    /// The data source as `GET /v1/data_sources/{id}` returns it (without `request_id`).
    pub fn schema(&self, data_source: &str) -> Value {
        let st = self.inner.lock();
        data_source_object(&st, &st.sources[source(&st, data_source)])
    }

    /// The pages of `data_source` (trashed ones too), in creation order.
    pub fn pages(&self, data_source: &str) -> Vec<FakePage> {
        let st = self.inner.lock();
        let key = compact(data_source);
        st.pages
            .iter()
            .enumerate()
            .filter(|(_, p)| compact(&p.data_source) == key)
            .map(|(index, page)| fake_page(&st, index, page))
            .collect()
    }

    /// The page with id `page`, if the fake holds one.
    pub fn page(&self, page: &str) -> Option<FakePage> {
        let st = self.inner.lock();
        let index = st.page_index(&compact(page))?;
        Some(fake_page(&st, index, &st.pages[index]))
    }

    /// The child blocks of `parent` (a page or a block), in order, as
    /// `GET /v1/blocks/{id}/children` returns them (nested children are under their own
    /// block's id).
    pub fn children(&self, parent: &str) -> Vec<Value> {
        let st = self.inner.lock();
        blocks::child_objects(&st, &compact(parent))
    }
}

fn source(st: &St, data_source: &str) -> usize {
    st.source_index(&compact(data_source))
        .unwrap_or_else(|| panic!("fake Notion: no data source {data_source}"))
}

fn page_of(st: &St, page: &str) -> usize {
    st.page_index(&compact(page))
        .unwrap_or_else(|| panic!("fake Notion: no page {page}"))
}

fn fake_page(st: &St, index: usize, page: &Page) -> FakePage {
    FakePage {
        id: page.id.clone(),
        data_source: page.data_source.clone(),
        index,
        properties: page_properties(st, page),
        in_trash: page.in_trash,
        url: objects::page_url(st, page),
    }
}
