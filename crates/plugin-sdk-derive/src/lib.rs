//! `#[derive(ComponentConfig)]` for l2l component configs: the keys `plugins inspect` shows, their
//! docs and whether each is required, read from the config struct itself — its field names (after
//! serde's `rename` / `rename_all`), its `///` doc comments and its serde defaults — so that what a
//! component documents is what it accepts, stated once.
//!
//! A key is optional when the struct has `#[serde(default)]`, the field has `#[serde(default)]` or
//! `#[serde(default = "…")]`, or the field is an `Option`; every other key is required, and so is a
//! field marked `#[config(required)]` (a key with a serde default that `build` refuses to leave unset,
//! such as a data set's folder). `#[config(min = 0.25, max = 8.0)]` declares the range of a key's
//! numbers: configs outside it are refused when parsed, `plugins inspect` shows it, and a learnable
//! parameter of the same name is kept inside it by forensics and training. `#[config(choices)]` on a
//! key whose type derives `Choices` declares the words it takes. A `#[serde(flatten)]` field adds the
//! keys of a shared group (its own `ComponentConfig`). `#[config(default = value)]` states a key's
//! default beside its doc and range: when any key has one, the derive writes the struct's `Default`
//! from them (keys without one take their type's default), so no `impl Default` repeats the keys. Fields with `#[serde(skip)]` are not keys. A
//! field without a doc comment is a compile error.
//!
//! `library_header!` writes the static abi_stable's loader looks up in a plugin library; `plugin!`
//! calls it, so that a plugin names the SDK only (abi_stable's own attribute names `::abi_stable`).
//!
//! Not for: parsing configs (serde does that) or anything at run time.

use proc_macro::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::parse::{Parse, ParseStream};
use syn::{parse_macro_input, Attribute, Data, DeriveInput, Fields, Ident, LitStr, Path, Token, Type};

/// Implements `l2l_plugin_sdk::ComponentConfig` from the struct's fields and their doc comments.
#[proc_macro_derive(ComponentConfig, attributes(config))]
pub fn derive_component_config(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => &fields.named,
            _ => {
                return Err(syn::Error::new_spanned(
                    input,
                    "ComponentConfig needs a struct with named fields",
                ))
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                input,
                "ComponentConfig needs a struct with named fields",
            ))
        }
    };
    let container = SerdeFlags::of(&input.attrs)?;
    let mut keys = Vec::new();
    let mut defaults = Vec::new();
    let mut any_default = false;
    for field in fields {
        let flags = SerdeFlags::of(&field.attrs)?;
        let marks = ConfigMarks::of(&field.attrs)?;
        let field_ident = field.ident.as_ref().expect("named field");
        defaults.push(match &marks.default {
            Some(value) => {
                any_default = true;
                quote! { #field_ident: #value }
            }
            None => quote! { #field_ident: ::core::default::Default::default() },
        });
        if flags.skip {
            continue;
        }
        if flags.flatten {
            // a shared group of keys (the SDK's `CfaKeys`): its keys as its own derive declares them
            let ty = &field.ty;
            keys.push(quote! { keys.extend(<#ty as ::l2l_plugin_sdk::ComponentConfig>::keys()); });
            continue;
        }
        let ident = field.ident.as_ref().expect("named field").to_string();
        let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_string();
        let name = flags
            .rename
            .unwrap_or_else(|| rename(&ident, container.rename_all.as_deref()));
        let doc = doc_text(&field.attrs);
        if doc.is_empty() {
            return Err(syn::Error::new_spanned(
                field,
                "document every config key with a `///` comment: `plugins inspect` shows it",
            ));
        }
        let required = marks.required || !(container.default || flags.default || is_option(&field.ty));
        let bound = |value: &Option<syn::Expr>| match value {
            Some(expr) => quote! { ::core::option::Option::Some((#expr) as f64) },
            None => quote! { ::core::option::Option::None },
        };
        let (min, max) = (bound(&marks.min), bound(&marks.max));
        let ty = &field.ty;
        let choices = if marks.choices {
            quote! { <#ty>::CHOICES }
        } else {
            quote! { &[] }
        };
        keys.push(quote! {
            keys.push(::l2l_plugin_sdk::ConfigKey {
                name: #name, doc: #doc, required: #required, min: #min, max: #max, choices: #choices,
            });
        });
    }
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    // the documented defaults, written once on the keys: `Default` is made from them
    let default_impl = any_default.then(|| {
        quote! {
            impl #impl_generics ::core::default::Default for #ident #type_generics #where_clause {
                fn default() -> Self {
                    Self { #(#defaults),* }
                }
            }
        }
    });
    Ok(quote! {
        impl #impl_generics ::l2l_plugin_sdk::ComponentConfig for #ident #type_generics #where_clause {
            fn keys() -> ::std::vec::Vec<::l2l_plugin_sdk::ConfigKey> {
                let mut keys = ::std::vec::Vec::new();
                #(#keys)*
                keys
            }
        }
        #default_impl
    })
}

/// `#[derive(Choices)]` on a unit-variant enum a config key takes: `CHOICES`, the words serde accepts
/// for it (after `rename_all` / `rename`), which `#[config(choices)]` on the key carries to
/// `plugins inspect` and the workbench.
#[proc_macro_derive(Choices)]
pub fn derive_choices(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand_choices(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand_choices(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(input, "Choices needs an enum of unit variants"));
    };
    let container = SerdeFlags::of(&input.attrs)?;
    let mut words = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(variant, "Choices needs unit variants"));
        }
        let flags = SerdeFlags::of(&variant.attrs)?;
        if flags.skip {
            continue;
        }
        words.push(
            flags
                .rename
                .unwrap_or_else(|| rename_variant(&variant.ident.to_string(), container.rename_all.as_deref())),
        );
    }
    let ident = &input.ident;
    Ok(quote! {
        impl #ident {
            /// The words a config may write for this key (serde's spelling).
            pub const CHOICES: &'static [&'static str] = &[#(#words),*];
        }
    })
}

/// A variant name as serde's `rename_all` spells it (the cases config enums use).
fn rename_variant(ident: &str, rule: Option<&str>) -> String {
    let snake = || {
        let mut out = String::new();
        for (i, c) in ident.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        }
        out
    };
    match rule {
        Some("lowercase") => ident.to_lowercase(),
        Some("UPPERCASE") => ident.to_uppercase(),
        Some("snake_case") => snake(),
        Some("SCREAMING_SNAKE_CASE") => snake().to_uppercase(),
        Some("kebab-case") => snake().replace('_', "-"),
        _ => ident.to_string(),
    }
}

/// The serde attributes that decide a key's name and whether it is required.
#[derive(Default)]
struct SerdeFlags {
    default: bool,
    skip: bool,
    flatten: bool,
    rename: Option<String>,
    rename_all: Option<String>,
}

impl SerdeFlags {
    fn of(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut flags = SerdeFlags::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            attr.parse_nested_meta(|meta| {
                let word = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
                match word.as_str() {
                    "default" => {
                        flags.default = true;
                        skip_value(&meta)
                    }
                    "skip" | "skip_deserializing" => {
                        flags.skip = true;
                        Ok(())
                    }
                    "flatten" => {
                        flags.flatten = true;
                        Ok(())
                    }
                    "rename" if meta.input.peek(syn::Token![=]) => {
                        flags.rename = Some(meta.value()?.parse::<LitStr>()?.value());
                        Ok(())
                    }
                    "rename_all" if meta.input.peek(syn::Token![=]) => {
                        flags.rename_all = Some(meta.value()?.parse::<LitStr>()?.value());
                        Ok(())
                    }
                    _ => skip_value(&meta),
                }
            })?;
        }
        Ok(flags)
    }
}

/// What a field's `#[config(…)]` says: `required`, `min = …`, `max = …`, `choices`, `default = …`.
#[derive(Default)]
struct ConfigMarks {
    required: bool,
    choices: bool,
    default: Option<syn::Expr>,
    min: Option<syn::Expr>,
    max: Option<syn::Expr>,
}

impl ConfigMarks {
    fn of(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut marks = ConfigMarks::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("config")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("required") {
                    marks.required = true;
                } else if meta.path.is_ident("choices") {
                    marks.choices = true;
                } else if meta.path.is_ident("default") {
                    marks.default = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("min") {
                    marks.min = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("max") {
                    marks.max = Some(meta.value()?.parse()?);
                } else {
                    return Err(meta.error("expected `required`, `choices`, `default = …`, `min = …` or `max = …`"));
                }
                Ok(())
            })?;
        }
        Ok(marks)
    }
}

/// Consumes whatever follows a serde attribute word (`= value` or a parenthesised list).
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// A field name as serde's `rename_all` spells it (the cases config structs use).
fn rename(ident: &str, rule: Option<&str>) -> String {
    match rule {
        Some("kebab-case") => ident.replace('_', "-"),
        Some("UPPERCASE") | Some("SCREAMING_SNAKE_CASE") => ident.to_uppercase(),
        Some("camelCase") => {
            let mut parts = ident.split('_');
            let first = parts.next().unwrap_or_default().to_string();
            parts.fold(first, |mut name, part| {
                let mut chars = part.chars();
                if let Some(c) = chars.next() {
                    name.extend(c.to_uppercase());
                    name.push_str(chars.as_str());
                }
                name
            })
        }
        _ => ident.to_string(),
    }
}

/// The field's doc comment as one line.
fn doc_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s), ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

/// `library_header!(path::to::abi_stable, root_fn, RootModuleRef)`: the `#[no_mangle]` library header
/// abi_stable's loader reads, as abi_stable's `#[export_root_module]` writes it, with abi_stable named
/// by the path given (the SDK's re-export) instead of `::abi_stable`.
#[proc_macro]
pub fn library_header(input: TokenStream) -> TokenStream {
    let HeaderInput {
        abi_stable,
        root,
        module,
    } = parse_macro_input!(input as HeaderInput);
    let export_name = Ident::new(
        &abi_stable_shared::mangled_root_module_loader_name(),
        proc_macro2::Span::call_site(),
    );
    quote! {
        #[no_mangle]
        pub static #export_name: #abi_stable::library::LibHeader = {
            pub extern "C" fn erased_root_module() -> #abi_stable::library::RootModuleResult {
                #abi_stable::library::__call_root_module_loader(#root)
            }
            type RootModule = <#module as #abi_stable::library::IntoRootModuleResult>::Module;
            unsafe {
                #abi_stable::library::LibHeader::from_constructor::<RootModule>(
                    erased_root_module,
                    #abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    }
    .into()
}

/// The arguments of [`library_header!`].
struct HeaderInput {
    abi_stable: Path,
    root: Ident,
    module: Type,
}

impl Parse for HeaderInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let abi_stable = input.parse()?;
        input.parse::<Token![,]>()?;
        let root = input.parse()?;
        input.parse::<Token![,]>()?;
        let module = input.parse()?;
        Ok(HeaderInput {
            abi_stable,
            root,
            module,
        })
    }
}
